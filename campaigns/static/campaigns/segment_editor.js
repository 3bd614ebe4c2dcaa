/*
 * Segment admin: the condition builder and its live count (change form), and
 * the on-demand counts of the segment list.
 *
 * The server renders the builder with plain named inputs (see
 * campaigns/admin/segment_form.py for the names); this script adds and
 * removes groups and conditions in place, redraws a condition's operator and
 * value inputs when its field or operator changes (from the catalogue the
 * page carries as JSON: each field's op_choices, the input each op takes,
 * its choices), and on every change asks the server, debounced, how many
 * contacts match. A response older than the newest request is ignored.
 * Without JavaScript the "Add"/"Remove" buttons submit the form and the
 * server redraws it; saving validates on the server either way.
 */
"use strict";
(function () {
  const DEBOUNCE_MS = 300;
  const LIST_OPS = ["in", "not_in"];
  const NUMBER_OPS = ["gt", "gte", "lt", "lte", "within_days", "older_than_days", "in_days", "not_in_days"];
  const NO_VALUE_OPS = ["is_empty", "is_not_empty", "received", "delivered", "failed", "replied", "not_received", "clicked", "not_clicked"];

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([name, value]) {
      if (value === null || value === undefined || value === false) {
        return;
      }
      if (name === "text") {
        node.textContent = value;
      } else if (value === true) {
        node.setAttribute(name, "");
      } else {
        node.setAttribute(name, value);
      }
    });
    (children || []).forEach(function (child) {
      node.appendChild(child);
    });
    return node;
  }

  function options(pairs, selected) {
    const chosen = new Set((selected || []).map(String));
    return pairs.map(function ([value, label]) {
      return el("option", { value: value, text: label, selected: chosen.has(String(value)) });
    });
  }

  function cookie(name) {
    const found = document.cookie.split("; ").find(function (part) {
      return part.startsWith(name + "=");
    });
    return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
  }

  function csrfToken(form) {
    const input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : cookie("csrftoken");
  }

  // What a multi-select holds, in words beside it (a long list scrolls).
  function showChosen(select, out) {
    const labels = Array.from(select.selectedOptions).map(function (o) { return o.textContent; });
    out.textContent = labels.length ? labels.join(", ") : "none chosen";
  }

  // --- reading the builder: the same rules as segment_form.definition_from_post

  function readNumber(text) {
    const trimmed = text.trim();
    if (trimmed === "") {
      return null;
    }
    return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(trimmed) ? Number(trimmed) : trimmed;
  }

  function readId(text) {
    const trimmed = String(text).trim();
    return /^\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
  }

  function readValue(op, kind, values) {
    if (NO_VALUE_OPS.includes(op)) {
      return null;
    }
    if (LIST_OPS.includes(op)) {
      const items = values
        .flatMap(function (v) { return String(v).split(","); })
        .map(function (v) { return v.trim(); })
        .filter(Boolean);
      return kind === "list" ? items.map(readId) : items;
    }
    const text = values.length ? String(values[0]) : "";
    if (NUMBER_OPS.includes(op) || ((kind === "number" || kind === "days") && !["before", "after", "on"].includes(op))) {
      return readNumber(text);
    }
    return text.trim();
  }

  function inputValues(condition, prefix, name) {
    const values = [];
    condition.querySelectorAll("[name='" + prefix + "-" + name + "']").forEach(function (input) {
      if (input.tagName === "SELECT" && input.multiple) {
        Array.from(input.selectedOptions).forEach(function (o) { values.push(o.value); });
      } else {
        values.push(input.value);
      }
    });
    return values;
  }

  function Editor(root, catalogue) {
    this.root = root;
    this.form = root.closest("form");
    this.catalogue = catalogue;
    this.byField = {};
    catalogue.forEach(function (field) { this.byField[field.field] = field; }, this);
    this.nextGroup = Number(root.dataset.nextGroup || 0);
    this.nextCondition = Number(root.dataset.nextCondition || 0);
    this.sequence = 0;
    this.shown = 0;
    this.timer = null;
  }

  Editor.prototype.definition = function () {
    const definition = {
      match: this.root.querySelector("select[name=match]").value,
      groups: [],
    };
    this.root.querySelectorAll(".segment-group").forEach(function (group) {
      const conditions = [];
      group.querySelectorAll(".segment-condition").forEach(function (condition) {
        const prefix = condition.dataset.prefix;
        const field = condition.querySelector(".segment-field").value;
        const opSelect = condition.querySelector(".segment-op");
        const op = opSelect ? opSelect.value : "";
        const kind = (this.byField[field] || {}).kind || "text";
        const read = { field: field, op: op, value: readValue(op, kind, inputValues(condition, prefix, "value")) };
        ["key", "channel", "purpose", "campaign"].forEach(function (extra) {
          const input = condition.querySelector("[name='" + prefix + "-" + extra + "']");
          if (input) {
            read[extra] = extra === "campaign" ? readId(input.value) : input.value.trim();
          }
        });
        conditions.push(read);
      }, this);
      definition.groups.push({
        match: group.querySelector(".segment-group-match").value,
        conditions: conditions,
      });
    }, this);
    return definition;
  };

  // --- drawing ---------------------------------------------------------------

  Editor.prototype.valueInput = function (field, op, prefix, value) {
    const kind = (field.inputs || {})[op] || "text";
    const name = prefix + "-value";
    const values = value === null || value === undefined ? [] : [].concat(value).map(String);
    const label = "Value";
    if (kind === "none") {
      return [];
    }
    if (kind === "select" || kind === "multi") {
      const select = el("select", { name: name, "aria-label": label, multiple: kind === "multi", class: "segment-input" },
        options(field.value_choices, values));
      if (kind === "multi") {
        select.size = Math.min(6, Math.max(3, field.value_choices.length));
        const chosen = el("span", { class: "segment-chosen" });
        showChosen(select, chosen);
        return [select, chosen];
      }
      return [select];
    }
    const types = { text: "text", tags: "text", number: "number", date: "date" };
    const input = el("input", {
      type: types[kind] || "text",
      name: name,
      "aria-label": label,
      class: "segment-input segment-input-" + kind,
      step: kind === "number" ? "any" : null,
      placeholder: kind === "tags" ? "one, two, three" : null,
    });
    input.value = kind === "tags" ? values.join(", ") : (values[0] || "");
    const parts = [input];
    if (kind === "tags") {
      parts.push(el("span", { class: "segment-hint", text: "separate values with commas" }));
    }
    const unit = (field.units || {})[op];
    if (unit) {
      parts.push(el("span", { class: "segment-unit", text: unit }));
    }
    return parts;
  };

  Editor.prototype.extras = function (field, prefix, condition) {
    const parts = [];
    if (field.needs_key) {
      const key = el("input", {
        type: "text",
        name: prefix + "-key",
        list: "segment-attribute-keys",
        placeholder: "attribute name",
        "aria-label": "Attribute",
        class: "segment-key",
      });
      key.value = condition.key || "";
      parts.push(key);
    }
    if (field.kind === "consent") {
      parts.push(el("select", { name: prefix + "-channel", "aria-label": "Channel", class: "segment-channel" },
        options(field.channels, [condition.channel || ""])));
      parts.push(el("select", { name: prefix + "-purpose", "aria-label": "Purpose", class: "segment-purpose" },
        options(field.purposes, [condition.purpose || ""])));
    }
    if (field.kind === "campaign") {
      const none = [["", "choose a campaign…"]];
      parts.push(el("select", { name: prefix + "-campaign", "aria-label": "Campaign", class: "segment-campaign" },
        options(none.concat(field.choices), [condition.campaign || ""])));
    }
    return parts;
  };

  // Redraw a condition after its field (all but the field picker) or its
  // operator (the value only) changed; what still fits is kept.
  Editor.prototype.redraw = function (condition, what) {
    const prefix = condition.dataset.prefix;
    const field = this.byField[condition.querySelector(".segment-field").value];
    if (!field) {
      return;
    }
    const current = this.definition().groups
      .flatMap(function (g) { return g.conditions; })[this.indexOf(condition)] || {};
    const opSelect = condition.querySelector(".segment-op");
    if (what === "field") {
      const extras = condition.querySelector(".segment-extras");
      extras.replaceChildren.apply(extras, this.extras(field, prefix, current));
      const ops = field.op_choices.map(function (pair) { return pair[0]; });
      const op = ops.includes(current.op) ? current.op : ops[0];
      opSelect.replaceChildren.apply(opSelect, options(field.op_choices, [op]));
      current.value = null;
    }
    const slot = condition.querySelector(".segment-value");
    slot.replaceChildren.apply(slot, this.valueInput(field, opSelect.value, prefix, what === "op" ? current.value : null));
  };

  Editor.prototype.indexOf = function (condition) {
    return Array.from(this.root.querySelectorAll(".segment-condition")).indexOf(condition);
  };

  Editor.prototype.newCondition = function (groupIndex) {
    const prefix = "g-" + groupIndex + "-c-" + this.nextCondition++;
    const field = this.catalogue[0];
    const op = field.op_choices[0][0];
    const remove = el("button", { type: "button", class: "segment-remove", title: "Remove this condition", text: "Remove" });
    const condition = el("div", { class: "segment-condition", "data-prefix": prefix }, [
      el("select", { name: prefix + "-field", class: "segment-field", "aria-label": "Field" },
        options(this.catalogue.map(function (f) { return [f.field, f.label]; }), [field.field])),
      el("span", { class: "segment-extras" }, this.extras(field, prefix, {})),
      el("select", { name: prefix + "-op", class: "segment-op", "aria-label": "Operator" },
        options(field.op_choices, [op])),
      el("span", { class: "segment-value" }, this.valueInput(field, op, prefix, null)),
      remove,
    ]);
    return condition;
  };

  Editor.prototype.newGroup = function () {
    const index = this.nextGroup++;
    const match = el("select", { name: "g-" + index + "-match", class: "segment-group-match", "aria-label": "Group match" },
      options([["all", "ALL"], ["any", "ANY"]], ["all"]));
    const head = el("div", { class: "segment-group-head" }, [
      el("strong", { class: "segment-group-title" }),
      document.createTextNode(" Contacts matching "), match,
      document.createTextNode(" of these conditions"),
      el("button", { type: "button", class: "segment-remove-group", text: "Remove group" }),
    ]);
    const conditions = el("div", { class: "segment-conditions" }, [this.newCondition(index)]);
    const add = el("button", { type: "button", class: "segment-add-condition", text: "+ Add condition" });
    return el("fieldset", { class: "segment-group", "data-index": index }, [head, conditions, add]);
  };

  Editor.prototype.relabel = function () {
    // The word between groups and the group numbers follow the top match.
    const word = this.root.querySelector("select[name=match]").value === "any" ? "OR" : "AND";
    const groups = this.root.querySelectorAll(".segment-group");
    groups.forEach(function (group, n) {
      group.dataset.joiner = n === 0 ? "" : word;
      const title = group.querySelector(".segment-group-title");
      if (title) {
        title.textContent = "Group " + (n + 1);
      }
    });
  };

  // --- the live count --------------------------------------------------------

  Editor.prototype.changed = function () {
    const definition = this.definition();
    const json = this.root.querySelector("#segment-json");
    if (json) {
      json.textContent = JSON.stringify(definition, null, 2);
    }
    this.relabel();
    window.clearTimeout(this.timer);
    this.root.querySelector("#segment-live").classList.add("segment-live-pending");
    this.timer = window.setTimeout(this.count.bind(this, definition), DEBOUNCE_MS);
  };

  Editor.prototype.count = function (definition) {
    const sequence = ++this.sequence;
    const editor = this;
    fetch(this.root.dataset.countUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(this.form) },
      body: JSON.stringify({ definition: definition }),
    })
      .then(function (response) {
        const type = response.headers.get("Content-Type") || "";
        if (response.redirected || !type.includes("json")) {
          return { errors: ["No count: the server answered with a page, not a count (HTTP " +
            response.status + "). Reload the page: your login may have expired."] };
        }
        return response.json().catch(function () {
          return { errors: ["The server did not answer with a count (HTTP " + response.status + ")."] };
        });
      })
      .catch(function () {
        return { errors: ["The count could not be fetched: is the server reachable?"] };
      })
      .then(function (result) {
        if (sequence < editor.shown) {
          return; // a newer answer is already shown
        }
        editor.shown = sequence;
        editor.show(result, sequence === editor.sequence);
      });
  };

  Editor.prototype.show = function (result, latest) {
    const live = this.root.querySelector("#segment-live");
    const errors = result.errors || [];
    const countNode = live.querySelector("#segment-count");
    const list = live.querySelector("#segment-live-errors");
    if (latest) {
      live.classList.remove("segment-live-pending");
    }
    live.classList.toggle("segment-live-invalid", errors.length > 0);
    if (errors.length) {
      countNode.textContent = "No count until the conditions are complete";
    } else {
      const n = Number(result.count);
      countNode.textContent = n.toLocaleString("en-US") + (n === 1 ? " contact matches" : " contacts match");
    }
    live.querySelector("#segment-description").textContent = errors.length ? "" : (result.description || "");
    live.querySelector("#segment-ms").textContent = errors.length || result.ms === undefined ? "" : "counted in " + result.ms + " ms";
    list.replaceChildren.apply(list, errors.map(function (e) { return el("li", { text: e }); }));
  };

  Editor.prototype.bind = function () {
    const editor = this;
    this.root.addEventListener("change", function (event) {
      const target = event.target;
      const condition = target.closest(".segment-condition");
      if (condition && target.classList.contains("segment-field")) {
        editor.redraw(condition, "field");
      } else if (condition && target.classList.contains("segment-op")) {
        editor.redraw(condition, "op");
      } else if (target.tagName === "SELECT" && target.multiple) {
        const out = target.parentNode.querySelector(".segment-chosen");
        if (out) {
          showChosen(target, out);
        }
      }
      editor.changed();
    });
    this.root.addEventListener("input", function (event) {
      if (event.target.tagName === "INPUT") {
        editor.changed();
      }
    });
    this.root.addEventListener("click", function (event) {
      const button = event.target.closest("button");
      if (!button || !editor.root.contains(button)) {
        return;
      }
      const group = button.closest(".segment-group");
      if (button.classList.contains("segment-add-condition")) {
        group.querySelector(".segment-conditions").appendChild(editor.newCondition(group.dataset.index));
      } else if (button.classList.contains("segment-remove")) {
        button.closest(".segment-condition").remove();
      } else if (button.classList.contains("segment-remove-group")) {
        group.remove();
      } else if (button.classList.contains("segment-add-group")) {
        editor.root.querySelector(".segment-groups").appendChild(editor.newGroup());
      } else {
        return;
      }
      event.preventDefault();
      editor.changed();
    });
    this.root.querySelector("#segment-live").hidden = false;
    this.relabel();
    this.changed();
  };

  // --- the segment list: counts on demand --------------------------------------

  function countRow(button) {
    const cell = button.closest("td") || button.parentNode;
    const out = cell.querySelector(".segment-row-count");
    button.disabled = true;
    out.textContent = "counting…";
    return fetch(button.dataset.countUrl, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (result) {
        if (result.errors && result.errors.length) {
          out.textContent = "not counted";
          out.title = result.errors[0];
        } else {
          out.textContent = Number(result.count).toLocaleString("en-US");
          out.title = "counted in " + result.ms + " ms";
        }
      })
      .catch(function () { out.textContent = "could not count"; })
      .finally(function () { button.disabled = false; });
  }

  function initList() {
    document.querySelectorAll("button.segment-count-button").forEach(function (button) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        countRow(button);
      });
    });
    const all = document.getElementById("segment-count-all");
    if (all) {
      all.addEventListener("click", function (event) {
        event.preventDefault();
        // One after the other: the database counts one segment at a time.
        Array.from(document.querySelectorAll("button.segment-count-button")).reduce(function (chain, button) {
          return chain.then(function () { return countRow(button); });
        }, Promise.resolve());
      });
    }
  }

  function init() {
    const root = document.getElementById("segment-editor");
    if (root) {
      const data = document.getElementById("segment-catalogue");
      new Editor(root, JSON.parse(data.textContent)).bind();
    }
    initList();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
