// Share a listing: copy its link, or open the device's share sheet where there is one.
// Without JavaScript the link stays in a read-only field to select, and "Email" still works.
(function () {
  document.querySelectorAll(".share").forEach(function (box) {
    var url = box.dataset.shareUrl;
    var title = box.dataset.shareTitle;
    var status = box.querySelector(".share__status");
    var copy = box.querySelector("[data-copy]");
    var native = box.querySelector("[data-native-share]");
    var field = box.querySelector("input");

    function say(text) { status.textContent = text; }

    if (copy) {
      copy.hidden = false;
      copy.addEventListener("click", function () {
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(url).then(
            function () { say("Link copied."); },
            function () { field.select(); say("Press Ctrl+C to copy the selected link."); }
          );
        } else {
          field.select();
          var ok = false;
          try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
          say(ok ? "Link copied." : "Press Ctrl+C to copy the selected link.");
        }
      });
    }
    if (native && navigator.share) {
      native.hidden = false;
      native.addEventListener("click", function () {
        navigator.share({ title: title, url: url }).catch(function () {});
      });
    }
    field.addEventListener("focus", function () { field.select(); });
  });
})();
