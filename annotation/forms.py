from django import forms


class DatasetImportForm(forms.Form):
    name = forms.SlugField(max_length=100)
    format = forms.ChoiceField(
        choices=[
            ("climage", "CLImage pickle (file)"),
            ("npy", "NumPy arrays (images, labels, classes)"),
            ("folder", "Zip of class folders (file)"),
        ]
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    file = forms.FileField(
        required=False, help_text="CLImage .pkl, or .zip of one folder per class"
    )
    images = forms.FileField(required=False, help_text="npy: images N x H x W x 3 uint8")
    labels = forms.FileField(required=False, help_text="npy: labels N ints (optional)")
    classes = forms.FileField(required=False, help_text="npy: classes.txt, one name per line")
