/*
 * Message template admin: help with writing, live.
 *
 * - a character and SMS-segment counter under the text, with the encoding
 *   (GSM-7 or UCS-2), the characters forcing UCS-2, and the length with the
 *   compliance footer a marketing SMS gets;
 * - a warning under a field holding a placeholder of another tool's syntax
 *   ("{{first_name}}"), naming the ${first_name} to write;
 * - a picker inserting ${name} at the cursor;
 * - a phone-style preview with sample values for the placeholders.
 *
 * Every rule comes from the server, as JSON in #template-writing-help
 * (campaigns.authoring.writing_help), and is applied by template_rules.js
 * as the Python code applies it. Without JavaScript the page works as
 * before, and the server's warnings show on save.
 */
"use strict";
(function () {
  const R = window.templateRules; // template_rules.js
  let config = null; // the server's rules, read once by init()
  // The kinds' text fields, in the order a recipient reads them.
  const PREVIEW_FIELDS = [
    "title", "media_url", "text", "description", "label",
    "contact_name", "contact_phones", "contact_emails", "contact_company",
  ];
  // Fields whose text is counted as the SMS (the choices' layout is Sinch's).
  const COUNTED_FIELDS = ["title", "text", "description"];
  const FIELD_LABELS = {
    title: "Title", text: "Text", description: "Description",
    media_url: "Media URL", choices: "Choices", label: "Label",
    contact_name: "Contact name", contact_phones: "Phone numbers",
    contact_emails: "Email addresses", contact_company: "Company",
  };

  // Characters one cannot see, named instead of shown.
  const INVISIBLE = {
    "\t": "tab", "\u00a0": "no-break space", "\u2009": "thin space",
    "\u202f": "narrow no-break space", "\u200b": "zero-width space",
    "\u200d": "zero-width joiner", "\ufeff": "zero-width no-break space",
    "\u2028": "line separator",
  };

  function describeChar(c) {
    const code = c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
    const shown = INVISIBLE[c] || (c.trim() ? c : "an invisible character");
    return shown + " (U+" + code + ")";
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function fieldElement(name) {
    // The template's own field (not an inline row's): its input, or the
    // read-only value a viewer sees.
    const row = Array.from(
      document.querySelectorAll(".form-row.field-" + name)
    ).find(function (r) { return !r.closest(".inline-group"); });
    return row ? row.querySelector("textarea, input, select, div.readonly")
      : null;
  }

  function fieldInput(name) {
    const element = fieldElement(name);
    return element && element.matches("textarea, input") ? element : null;
  }

  function fieldValue(name) {
    const element = fieldElement(name);
    if (!element) {
      return "";
    }
    if (element.matches("div.readonly")) {
      const shown = element.innerText.trim();
      return shown === "-" ? "" : shown; // the admin's "empty" mark
    }
    return element.value;
  }

  function slot(input) {
    // Below the label and the field, above the field's help text.
    return input.closest(".flex-container") || input;
  }

  function isShown(element) {
    return Boolean(element) && element.offsetParent !== null;
  }

  function currentKind() {
    // The kind chosen on the page, or the saved one a viewer sees.
    const select = document.querySelector("select[data-kind-fields]");
    return select ? select.value : config.kind;
  }

  function kindFields() {
    // The text fields of the chosen kind (template_kind.js hides the others).
    return new Set(config.kind_fields[currentKind()] || []);
  }

  function line(parent, text, className) {
    const p = document.createElement("p");
    p.textContent = text;
    if (className) {
      p.className = className;
    }
    parent.appendChild(p);
    return p;
  }

  function counterLines(text, rules) {
    const info = R.analyse(text, rules);
    const lines = [];
    const sms = rules.config.sms;
    let head = plural(info.units, "character") + ", " +
      plural(info.segments, "SMS segment") + " (" + info.encoding + ")";
    if (info.encoding === sms.gsm7) {
      const limit = info.units <= sms.gsm7_single
        ? sms.gsm7_single + " fit one segment"
        : sms.gsm7_part + " per segment";
      head += ": " + limit;
    } else {
      head += ": " + (info.units <= sms.ucs2_single
        ? sms.ucs2_single + " fit one segment"
        : sms.ucs2_part + " per segment");
    }
    lines.push(["tpl-count", head]);
    const fine = Array.from(new Set(Array.from(text).filter(function (c) {
      return c > "~" && (rules.basic.has(c) || rules.extension.has(c));
    })));
    const fineText = fine.length ? fine.join(" ") + (fine.length === 1
      ? " is" : " are") + " fine in GSM-7." : "";
    if (info.ucs2_chars.length) {
      lines.push(["tpl-ucs2", "UCS-2 because of: " +
        info.ucs2_chars.map(describeChar).join(", ") + ". " +
        "Replace " + (info.ucs2_chars.length === 1 ? "it" : "them") +
        " to send GSM-7 (" + sms.gsm7_single + " characters per SMS). " +
        fineText]);
    } else if (fineText) {
      lines.push(["tpl-quiet", fineText]);
    }
    const doubled = Array.from(new Set(Array.from(text).filter(function (c) {
      return rules.extension.has(c);
    })));
    if (doubled.length && !info.ucs2_chars.length) {
      lines.push(["tpl-quiet", doubled.map(describeChar).join(", ") +
        " count" + (doubled.length === 1 ? "s" : "") + " as two characters."]);
    }
    return lines;
  }

  function footerLines(raw, text, rules) {
    // The footer is skipped when the template's own text (placeholders as
    // written) ends with it; the length counts the rendered text.
    const conf = rules.config.footer;
    if (!conf.enabled) {
      return conf.problem ? [["tpl-warn", conf.problem]] : [];
    }
    const values = R.footerValues(raw, rules);
    const value = values[""];
    if (!value) {
      const others = Object.keys(values).filter(function (tag) {
        return values[tag];
      });
      return [["tpl-quiet", "The text ends with the compliance footer: " +
        "marketing SMS get no second one" + (others.length
          ? " (contacts in " + others.join(", ") + " still get theirs)."
          : ".")]];
    }
    const info = R.analyse(text + value, rules);
    let result = "On marketing SMS the compliance footer “" +
      conf.footers[""].line + "” is added: " +
      plural(info.units, "character") + ", " +
      plural(info.segments, "segment") + " (" + info.encoding + ")";
    let worst = null;
    Object.entries(values).forEach(function ([tag, v]) {
      const other = R.analyse(text + v, rules);
      if (tag && other.segments > info.segments &&
          (!worst || other.segments > worst[1])) {
        worst = [tag, other.segments];
      }
    });
    if (worst) {
      result += "; up to " + plural(worst[1], "segment") +
        " with the " + worst[0] + " footer";
    }
    return [["tpl-footer-count", result + "."]];
  }

  function updateCounter(rules, shown) {
    const box = document.getElementById("tpl-counter");
    if (!box) {
      return;
    }
    const counted = COUNTED_FIELDS.filter(function (name) {
      return shown.has(name);
    });
    box.replaceChildren();
    if (!counted.length) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    const raw = counted.map(fieldValue).filter(Boolean).join("\n");
    const text = R.renderedText(raw, rules);
    counterLines(text, rules).forEach(function ([cls, t]) {
      line(box, t, cls);
    });
    // The footer is added to text messages only (footer.sms_text).
    if (currentKind() === "TEXT") {
      footerLines(raw, text, rules).forEach(function ([cls, t]) {
        line(box, t, cls);
      });
    }
    const names = raw.match(rules.placeholder) || [];
    if (names.length) {
      line(box, "Counted with the preview's sample values for " +
        plural(new Set(names).size, "placeholder") +
        ": each recipient's own values change the count.", "tpl-quiet");
    }
    if (counted.length > 1) {
      line(box, "Counted: " + counted.map(function (n) {
        return FIELD_LABELS[n];
      }).join(", ") + " (as Sinch converts the message to SMS text).",
      "tpl-quiet");
    }
  }

  function updateWarnings(rules) {
    Object.keys(FIELD_LABELS).forEach(function (name) {
      const input = fieldInput(name);
      if (!input) {
        return;
      }
      const row = input.closest(".form-row");
      let list = row.querySelector(".tpl-syntax-warnings");
      const found = R.foreignSyntax(input.value, rules);
      if (!found.length) {
        if (list) {
          list.remove();
        }
        return;
      }
      if (!list) {
        list = document.createElement("ul");
        list.className = "tpl-syntax-warnings";
        list.setAttribute("aria-live", "polite");
        slot(input).insertAdjacentElement("afterend", list);
      }
      list.replaceChildren();
      found.forEach(function (f) {
        const item = document.createElement("li");
        item.append("“" + f.written + "” is not a placeholder Sinch fills: " +
          "it would be sent as written. Write ");
        const code = document.createElement("code");
        code.textContent = "${" + f.name + "}";
        item.append(code, ".");
        list.appendChild(item);
      });
    });
  }

  function bubbleLine(parent, text, rules, className) {
    const p = document.createElement("p");
    if (className) {
      p.className = className;
    }
    R.render(text, rules).forEach(function ([piece, sample]) {
      if (sample) {
        const mark = document.createElement("mark");
        mark.className = "tpl-sample";
        mark.textContent = piece;
        p.appendChild(mark);
      } else {
        p.append(piece);
      }
    });
    parent.appendChild(p);
  }

  function updatePreview(rules, shown) {
    const bubble = document.getElementById("tpl-bubble");
    const footer = document.getElementById("tpl-bubble-footer");
    if (!bubble) {
      return;
    }
    bubble.replaceChildren();
    footer.hidden = true;
    const kind = currentKind();
    if (kind === "CHANNEL_TEMPLATE" || kind === "OMNI_TEMPLATE") {
      const id = fieldValue("template_id");
      line(bubble, "Sent as the template registered at " +
        (kind === "OMNI_TEMPLATE" ? "Sinch" : "the channel") +
        (id ? " (“" + id + "”)" : "") +
        ": its text is kept there.", "tpl-quiet");
      return;
    }
    let texts = [];
    PREVIEW_FIELDS.forEach(function (name) {
      const value = fieldValue(name);
      if (shown.has(name) && value.trim()) {
        texts.push(value);
        bubbleLine(bubble, value, rules,
          name === "title" ? "tpl-bubble-title" : "");
      }
    });
    const choices = fieldValue("choices");
    if (shown.has("choices") && choices.trim()) {
      const list = document.createElement("div");
      list.className = "tpl-bubble-choices";
      choices.split("\n").filter(function (l) { return l.trim(); })
        .forEach(function (l) {
          const chip = document.createElement("span");
          chip.className = "tpl-chip";
          chip.textContent = R.renderedText(l.split("|")[0].trim(), rules);
          list.appendChild(chip);
        });
      bubble.appendChild(list);
    }
    if (!bubble.childNodes.length) {
      line(bubble, "The message shows here as you write.", "tpl-quiet");
      return;
    }
    const conf = rules.config.footer;
    if (kind === "TEXT" && conf.enabled) {
      const value = R.footerValues(texts.join("\n"), rules)[""];
      if (value) {
        footer.hidden = false;
        footer.textContent = value.trim() + " (added on marketing SMS)";
      }
    }
  }

  function insertAt(input, token) {
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? start;
    input.setRangeText(token, start, end, "end");
    input.focus();
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function init() {
    const data = document.getElementById("template-writing-help");
    if (!data) {
      return;
    }
    config = JSON.parse(data.textContent);
    const rules = R.make(config);
    window.templateWritingHelp = {
      analyse: function (text) { return R.analyse(text, rules); },
      foreignSyntax: function (text) { return R.foreignSyntax(text, rules); },
      footerValues: function (text) { return R.footerValues(text, rules); },
    };
    const text = fieldInput("text");
    const shownText = fieldElement("text");
    if (shownText) {
      const box = document.createElement("div");
      box.id = "tpl-counter";
      box.className = "tpl-counter";
      box.setAttribute("aria-live", "polite");
      slot(shownText).insertAdjacentElement("afterend", box);
    }
    // The field a picked placeholder goes into: the last one written in.
    let target = text;
    const form = document.getElementById("messagetemplate_form");
    function update() {
      const shown = kindFields();
      updateCounter(rules, shown);
      updateWarnings(rules);
      updatePreview(rules, shown);
    }
    Object.keys(FIELD_LABELS).forEach(function (name) {
      const input = fieldInput(name);
      if (input) {
        input.addEventListener("focus", function () { target = input; });
      }
    });
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    document.querySelectorAll(".tpl-insert").forEach(function (button) {
      button.addEventListener("click", function () {
        const into = isShown(target) ? target : Object.keys(FIELD_LABELS)
          .map(fieldInput).find(isShown);
        if (into) {
          insertAt(into, "${" + button.dataset.name + "}");
        }
      });
    });
    update();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
