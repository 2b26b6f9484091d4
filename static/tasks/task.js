/* Task pages: answering by click or key, time per item, and a submit that cannot lose work.
 * Plain JS, no dependencies. The page's data (token, URLs) comes from #task-data. */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("task-data").textContent);
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  var statusEl = document.querySelector(".status");
  var submitButtons = $$(".js-submit");
  var sending = false;
  var finished = false;

  function setStatus(text, kind) {
    if (!statusEl) return;
    statusEl.textContent = text;
    statusEl.className = "status" + (kind ? " " + kind : "");
  }

  /* Time per item: whatever is "current" accumulates time while the page is visible. */
  var clock = (function () {
    var spent = {}, active = null, since = performance.now();
    function flush() {
      var now = performance.now();
      if (active !== null && !document.hidden) spent[active] = (spent[active] || 0) + (now - since);
      since = now;
    }
    document.addEventListener("visibilitychange", flush);
    return {
      switchTo: function (key) { flush(); active = key; },
      ms: function (key) { flush(); return Math.round(spent[key] || 0); },
      restore: function (saved) { if (saved) for (var k in saved) spent[k] = saved[k]; },
      dump: function () { flush(); return spent; }
    };
  })();

  /* A copy of the answers in sessionStorage survives an accidental reload. Third-party
   * frames may have no storage at all, so every use is guarded. */
  var storeKey = "task:" + data.hit + ":" + data.assignmentId;
  function save(state) {
    if (data.preview) return;
    try { sessionStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* no storage */ }
  }
  function load() {
    if (data.preview) return null;
    try { return JSON.parse(sessionStorage.getItem(storeKey) || "null"); } catch (e) { return null; }
  }
  function forget() {
    try { sessionStorage.removeItem(storeKey); } catch (e) { /* no storage */ }
  }

  function typing(ev) {
    var t = ev.target;
    return t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.type === "text"));
  }
  function scrollToEl(el) {
    var smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    el.scrollIntoView({ block: "center", behavior: smooth ? "smooth" : "auto" });
  }

  /* ---- Submission: our endpoint first (the record), then the marketplace's form post. ---- */
  function postToMarketplace(answers) {
    finished = true;
    forget();
    if (!data.externalSubmit) {
      setStatus("Submitted. Thank you! You can close this page.", "ok");
      return;
    }
    setStatus("Saved. Finishing the HIT…", "ok");
    var form = document.createElement("form");
    form.method = "POST";
    form.action = data.externalSubmit;
    form.target = "_self";
    function field(name, value) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      form.appendChild(input);
    }
    field("assignmentId", data.assignmentId);
    field("answers", JSON.stringify(answers));
    answers.forEach(function (a) { field("item_" + a.item, String(a.answer)); });
    document.body.appendChild(form);
    form.submit();
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function send(answers, onRefused) {
    if (sending || finished || data.preview) return;
    sending = true;
    submitButtons.forEach(function (b) { b.disabled = true; });
    setStatus("Saving your answers…");
    var body = JSON.stringify({ token: data.token, answers: answers });
    var attempt = 0;
    function tryOnce() {
      return fetch(data.submitUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: body,
        credentials: "omit",
        cache: "no-store"
      }).then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (out) {
          if (resp.ok || out.already_submitted) {
            sending = false;
            postToMarketplace(out.answers && out.answers.length ? out.answers : answers);
            return;
          }
          if (resp.status >= 500) throw new Error("server " + resp.status);
          sending = false;
          setStatus((out.error || "Your answers were refused.") + "", "error");
          if (onRefused) onRefused(out);
        });
      }).catch(function () {
        attempt += 1;
        if (attempt < 5) {
          setStatus("Connection problem, retrying (" + attempt + ")…");
          return sleep(600 * attempt).then(tryOnce);
        }
        sending = false;
        setStatus("Could not reach the server. Your answers are still here: press Submit to try again.", "error");
        if (onRefused) onRefused({});
      });
    }
    tryOnce();
  }

  /* ---- One choice per problem: complementary, verify, review. ---- */
  function initChoice() {
    var problems = $$(".problem");
    var chips = $$(".jump a");
    var countEl = document.querySelector(".js-count");
    var current = 0;

    function answerOf(p) {
      var checked = p.querySelector("input:checked");
      return checked ? parseInt(checked.value, 10) : null;
    }
    function allAnswered() { return problems.every(function (p) { return answerOf(p) !== null; }); }
    function refresh() {
      var n = 0;
      problems.forEach(function (p, i) {
        var done = answerOf(p) !== null;
        if (done) n += 1;
        if (chips[i]) chips[i].classList.toggle("done", done);
      });
      if (countEl) countEl.textContent = String(n);
      submitButtons.forEach(function (b) { b.disabled = data.preview || finished || sending || n < problems.length; });
    }
    function setCurrent(i, scroll) {
      if (i < 0 || i >= problems.length) return;
      problems[current].classList.remove("current");
      if (chips[current]) chips[current].classList.remove("current");
      current = i;
      problems[i].classList.add("current");
      if (chips[i]) chips[i].classList.add("current");
      clock.switchTo(i);
      if (scroll) scrollToEl(problems[i]);
    }
    function nextUnanswered(from) {
      for (var k = 1; k <= problems.length; k++) {
        var j = (from + k) % problems.length;
        if (answerOf(problems[j]) === null) return j;
      }
      return -1;
    }
    function collect() {
      return problems.map(function (p, i) {
        return { item: parseInt(p.dataset.item, 10), answer: answerOf(p), duration_ms: clock.ms(i) };
      });
    }
    function persist() {
      var answers = {};
      problems.forEach(function (p) { var a = answerOf(p); if (a !== null) answers[p.dataset.item] = a; });
      save({ answers: answers, clock: clock.dump() });
    }
    function submit() {
      if (!allAnswered()) {
        var j = nextUnanswered(current);
        if (j >= 0) setCurrent(j, true);
        setStatus("Please answer every problem first.", "error");
        return;
      }
      send(collect(), refresh);
    }
    function answered(i) {
      refresh();
      persist();
      var j = nextUnanswered(i);
      if (j >= 0 && j !== i) {
        setCurrent(j, true);
      } else if (allAnswered()) {
        setStatus("All answered. Press Submit (or Enter) to finish.");
        submitButtons[submitButtons.length - 1].focus({ preventScroll: true });
      }
    }

    var saved = load();
    if (saved && saved.answers) {
      problems.forEach(function (p) {
        var a = saved.answers[p.dataset.item];
        if (a === undefined) return;
        var input = p.querySelector('input[value="' + a + '"]');
        if (input) input.checked = true;
      });
      clock.restore(saved.clock);
    }
    problems.forEach(function (p, i) {
      p.addEventListener("change", function () { if (i !== current) setCurrent(i, false); answered(i); });
      p.addEventListener("pointerdown", function () { if (i !== current) setCurrent(i, false); });
    });
    chips.forEach(function (c, i) {
      c.addEventListener("click", function (ev) { ev.preventDefault(); setCurrent(i, true); });
    });
    submitButtons.forEach(function (b) { b.addEventListener("click", submit); });
    document.addEventListener("keydown", function (ev) {
      if (data.preview || finished || typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      var key = ev.key;
      if (/^[0-9]$/.test(key)) {
        var inputs = problems[current].querySelectorAll("input[type=radio]");
        var input = inputs[key === "0" ? 9 : parseInt(key, 10) - 1];  // 0 is the tenth choice
        if (input) {
          ev.preventDefault();
          input.checked = true;
          answered(current);
        }
      } else if (key === "ArrowDown" || key === "ArrowRight" || key === "j") {
        ev.preventDefault();
        setCurrent(Math.min(current + 1, problems.length - 1), true);
      } else if (key === "ArrowUp" || key === "ArrowLeft" || key === "k") {
        ev.preventDefault();
        setCurrent(Math.max(current - 1, 0), true);
      } else if (key === "Enter") {
        if (ev.target && ev.target.tagName === "BUTTON") return;  // the button's own action
        ev.preventDefault();
        if (current === problems.length - 1 || allAnswered()) {
          if (allAnswered()) submit();
          else setCurrent(nextUnanswered(current), true);
        } else {
          setCurrent(current + 1, true);
        }
      }
    });
    /* Classify pages with many classes: a search box per image hides the classes whose name
     * does not contain what was typed (the radios stay in the form). */
    $$(".class-search").forEach(function (box) {
      box.addEventListener("input", function () {
        var q = box.value.trim().toLowerCase();
        $$(".choice", box.parentNode).forEach(function (c) {
          var txt = (c.querySelector(".txt") || c).textContent.toLowerCase();
          c.hidden = q !== "" && txt.indexOf(q) === -1;
        });
      });
    });
    setCurrent(0, false);
    refresh();
  }

  /* ---- Select: tasks of up to 20 images, at least data-min selected each. ---- */
  function initSelect() {
    var tasks = $$(".task");
    var chips = $$(".jump a");
    var countEl = document.querySelector(".js-count");
    var taskEl = document.querySelector(".js-task");
    var current = 0;

    function boxes(t) { return $$("input[type=checkbox]", t); }
    function selected(t) { return boxes(t).filter(function (b) { return b.checked; }).length; }
    function complete(t) { return selected(t) >= parseInt(t.dataset.min, 10); }
    function firstIncomplete() {
      for (var i = 0; i < tasks.length; i++) if (!complete(tasks[i])) return i;
      return tasks.length;
    }
    function refresh() {
      var reach = firstIncomplete();
      var done = 0;
      tasks.forEach(function (t, i) {
        var n = selected(t), ok = complete(t);
        if (ok) done += 1;
        t.querySelector(".js-selected").textContent = String(n);
        t.querySelector(".need").classList.toggle("ok", ok);
        var next = t.querySelector(".js-next");
        next.disabled = data.preview || finished || sending || !ok || (i === tasks.length - 1 && reach < tasks.length);
        if (chips[i]) {
          chips[i].classList.toggle("done", ok);
          chips[i].classList.toggle("locked", i > reach);
        }
      });
      if (countEl) countEl.textContent = String(done);
      submitButtons.forEach(function (b) { b.disabled = data.preview || finished || sending || done < tasks.length; });
    }
    function preload(i) {
      if (i < tasks.length) $$("img[loading=lazy]", tasks[i]).forEach(function (img) { img.loading = "eager"; });
    }
    function show(i) {
      if (i < 0 || i >= tasks.length) return;
      tasks[current].hidden = true;
      if (chips[current]) chips[current].classList.remove("current");
      current = i;
      tasks[i].hidden = false;
      if (chips[i]) chips[i].classList.add("current");
      if (taskEl) taskEl.textContent = String(i + 1);
      clock.switchTo(i);
      preload(i + 1);
      var top = document.querySelector(".task-form");
      if (window.scrollY > top.offsetTop) window.scrollTo(0, Math.max(0, top.offsetTop - 110));
    }
    function collect() {
      var out = [];
      tasks.forEach(function (t, i) {
        var ms = clock.ms(i);
        boxes(t).forEach(function (b) {
          out.push({ item: parseInt(b.closest(".tile").dataset.item, 10), answer: b.checked ? 1 : 0, duration_ms: ms });
        });
      });
      return out;
    }
    function persist() {
      var picked = [];
      tasks.forEach(function (t) { boxes(t).forEach(function (b) { if (b.checked) picked.push(b.closest(".tile").dataset.item); }); });
      save({ picked: picked, clock: clock.dump(), current: current });
    }
    function submit() {
      var reach = firstIncomplete();
      if (reach < tasks.length) {
        show(reach);
        setStatus("Task " + (reach + 1) + " needs at least " + tasks[reach].dataset.min + " images.", "error");
        return;
      }
      send(collect(), refresh);
    }
    function next() {
      if (!complete(tasks[current])) {
        setStatus("Select at least " + tasks[current].dataset.min + " images to go on.", "error");
        return;
      }
      setStatus("");
      if (current === tasks.length - 1) submit();
      else show(current + 1);
    }

    var saved = load();
    if (saved && saved.picked) {
      saved.picked.forEach(function (id) {
        var box = document.querySelector('.tile[data-item="' + id + '"] input');
        if (box) box.checked = true;
      });
      clock.restore(saved.clock);
    }
    function setAll(t, on) {
      if (data.preview || finished) return;
      boxes(t).forEach(function (b) { b.checked = on; });
      refresh();
      persist();
    }
    tasks.forEach(function (t, i) {
      t.addEventListener("change", function () { refresh(); persist(); });
      t.querySelector(".js-all").addEventListener("click", function () { setAll(t, true); });
      t.querySelector(".js-none").addEventListener("click", function () { setAll(t, false); });
      t.querySelector(".js-next").addEventListener("click", next);
      t.querySelector(".js-prev").addEventListener("click", function () { show(i - 1); });
    });
    chips.forEach(function (c, i) {
      c.addEventListener("click", function (ev) { ev.preventDefault(); if (i <= firstIncomplete()) show(i); });
    });
    submitButtons.forEach(function (b) { b.addEventListener("click", submit); });
    document.addEventListener("keydown", function (ev) {
      if (data.preview || finished || typing(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      var m = /^Digit([0-9])$/.exec(ev.code || "");
      if (m) {
        var n = m[1] === "0" ? 10 : parseInt(m[1], 10);
        if (ev.shiftKey) n += 10;
        var box = boxes(tasks[current])[n - 1];
        if (box) {
          ev.preventDefault();
          box.checked = !box.checked;
          refresh();
          persist();
        }
      } else if (ev.key === "ArrowRight" || (ev.key === "Enter" && !(ev.target && ev.target.tagName === "BUTTON"))) {
        ev.preventDefault();
        next();
      } else if (ev.key === "ArrowLeft") {
        ev.preventDefault();
        show(current - 1);
      } else if (ev.key === "a" || ev.key === "A" || ev.key === "n" || ev.key === "N") {
        ev.preventDefault();
        setAll(tasks[current], ev.key.toLowerCase() === "a");
      }
    });
    var start = saved && saved.current ? Math.min(saved.current, firstIncomplete()) : 0;
    tasks[0].hidden = true;
    tasks[start].hidden = false;
    current = start;
    show(start);
    refresh();
  }

  /* ---- Already submitted: offer to finish on the marketplace with the stored answers. ---- */
  function initDone() {
    $$(".js-finish").forEach(function (b) {
      b.addEventListener("click", function () { b.disabled = true; postToMarketplace(data.answers || []); });
    });
  }

  /* ---- Return (a link to the marketplace's confirmation): the saved answers go with it. ---- */
  $$(".js-return").forEach(function (a) { a.addEventListener("click", forget); });

  var form = document.getElementById("task-form");
  if (form) form.addEventListener("submit", function (ev) { ev.preventDefault(); });
  if (data.mode === "choice") initChoice();
  else if (data.mode === "select") initSelect();
  else if (data.mode === "done") initDone();
})();
