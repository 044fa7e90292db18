// The job list: open the filter panel on wide screens, and leave empty fields out of the search
// address. A file rather than inline, so the Content-Security-Policy allows no inline script.
// Not deferred: it runs where the page ends, before the first paint, so the panel never flashes.
(function () {
  // Wide screens show the filters beside the results; phones keep them folded above.
  if (window.matchMedia("(min-width: 761px)").matches) {
    document.querySelectorAll("details.filters").forEach(function (d) { d.open = true; });
  }
  // Leave empty fields out of the address, so a shared link says only what was chosen.
  document.querySelectorAll("form[data-drop-empty]").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("input, select").forEach(function (el) {
        if (el.name && el.value === "" && el.type !== "checkbox" && el.type !== "radio") {
          el.disabled = true;
        }
      });
      form.querySelectorAll('input[type="radio"][value=""]:checked').forEach(function (el) {
        el.disabled = true;
      });
      window.setTimeout(function () {
        form.querySelectorAll(":disabled").forEach(function (el) { el.disabled = false; });
      }, 0);
    });
  });
})();
