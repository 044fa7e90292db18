// "Report this job" in place: send the form in the background and thank the visitor right
// there. Without JavaScript the same form posts to its own page and works the same.
(function () {
  document.querySelectorAll("form[data-report-inline]").forEach(function (form) {
    var errors = form.querySelector(".report-form__errors");
    form.addEventListener("submit", function (event) {
      if (!window.fetch) { return; }
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-Requested-With": "fetch" },
        credentials: "same-origin"
      }).then(function (response) {
        return response.json().then(function (data) { return { status: response.status, data: data }; });
      }).then(function (result) {
        if (result.data.ok) {
          var thanks = document.createElement("p");
          thanks.className = "notice";
          thanks.setAttribute("role", "status");
          thanks.textContent = result.data.message;
          form.replaceWith(thanks);
          return;
        }
        var messages = [];
        Object.keys(result.data.errors || {}).forEach(function (field) {
          messages = messages.concat(result.data.errors[field]);
        });
        errors.textContent = messages.join(" ") || "Please check the form.";
        errors.hidden = false;
        button.disabled = false;
      }).catch(function () {
        form.submit();  // the network or the server failed us: fall back to a plain post
      });
    });
  });
})();
