/* The completion page's "Copy" button: the code goes to the clipboard, and the button says so. */
(function () {
  var button = document.getElementById("copy-code");
  var code = document.getElementById("completion-code");
  if (!button || !code) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(code.textContent.trim()).then(done, function () {});
    } else {
      var range = document.createRange();
      range.selectNodeContents(code);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      if (document.execCommand("copy")) done();
    }
  });
})();
