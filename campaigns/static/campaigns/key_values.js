// Key/value editor (config/lib/key_values.py): add and remove rows. The rows
// post as plain inputs, so the form works without this script too.
"use strict";
document.addEventListener("click", (event) => {
  const editor = event.target.closest(".kv-editor");
  if (!editor) return;
  if (event.target.classList.contains("kv-add")) {
    const row = editor.querySelector("tfoot .kv-template").cloneNode(true);
    row.classList.remove("kv-template");
    row.querySelectorAll("input, select").forEach((input) => { input.disabled = false; });
    editor.querySelector("tbody").appendChild(row);
    row.querySelector(".kv-key").focus();
  } else if (event.target.classList.contains("kv-remove")) {
    const row = event.target.closest("tr");
    if (row.closest("tbody")) row.remove();
  }
});
