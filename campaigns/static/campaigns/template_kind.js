/*
 * Message template admin: show only the fields of the chosen kind.
 *
 * The kind <select> carries the fields each kind uses, as JSON in its
 * data-kind-fields attribute (built by the server from
 * MessageTemplate.KIND_FIELDS). Fields of other kinds are hidden, not
 * cleared: their values are kept and ignored. A fieldset whose fields are
 * all hidden is hidden too. Without JavaScript every field stays visible.
 */
"use strict";
(function () {
  function rowsOf(name) {
    // An inline's group ("cards-group") or a field's row ("field-title").
    if (name.endsWith("-group")) {
      const group = document.getElementById(name);
      return group ? [group] : [];
    }
    // Rows of the template's own form, not those of an inline's rows.
    return Array.from(
      document.querySelectorAll(".form-row.field-" + name)
    ).filter(function (row) {
      return !row.closest(".inline-group");
    });
  }

  function update(select, kindFields) {
    const shown = new Set(kindFields[select.value] || []);
    const fieldsets = new Set();
    Object.values(kindFields).flat().forEach(function (name) {
      rowsOf(name).forEach(function (row) {
        // A row with an error stays visible, whatever the kind.
        const hide = !shown.has(name) && !row.querySelector(".errorlist");
        row.style.display = hide ? "none" : "";
        const fieldset = row.closest("fieldset");
        if (fieldset) {
          fieldsets.add(fieldset);
        }
      });
    });
    fieldsets.forEach(function (fieldset) {
      const rows = Array.from(fieldset.querySelectorAll(".form-row"));
      const empty = rows.every(function (row) {
        return row.style.display === "none";
      });
      fieldset.style.display = empty ? "none" : "";
    });
  }

  function init() {
    const select = document.querySelector("select[data-kind-fields]");
    if (!select) {
      return;
    }
    let kindFields;
    try {
      kindFields = JSON.parse(select.dataset.kindFields);
    } catch (error) {
      return; // Leave every field visible.
    }
    select.addEventListener("change", function () {
      update(select, kindFields);
    });
    update(select, kindFields);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
