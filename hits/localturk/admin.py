from django.contrib import admin

from .models import Account, CallLog, FaultPlan, Hit, SimWorker, WorkerQualification


class QualificationInline(admin.TabularInline):
    model = WorkerQualification
    extra = 0


@admin.register(SimWorker)
class SimWorkerAdmin(admin.ModelAdmin):
    list_display = ["worker_id", "masters", "approval_rate", "approved_count", "locale_country"]
    search_fields = ["worker_id"]
    inlines = [QualificationInline]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["realm", "balance"]


@admin.register(FaultPlan)
class FaultPlanAdmin(admin.ModelAdmin):
    list_display = ["realm", "throttle_rate", "fault_rate", "fault_after_rate", "delay_ms", "calls"]


@admin.register(Hit)
class HitAdmin(admin.ModelAdmin):
    list_display = ["hit_id", "realm", "requester_annotation", "max_assignments", "expires_at"]
    list_filter = ["realm"]
    readonly_fields = [f.name for f in Hit._meta.fields]


@admin.register(CallLog)
class CallLogAdmin(admin.ModelAdmin):
    list_display = ["at", "realm", "operation", "status", "error_code"]
    list_filter = ["realm", "operation", "status"]
