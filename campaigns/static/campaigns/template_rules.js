/*
 * The server's writing rules, applied in the browser: the functions below
 * do what campaigns.authoring.sms.analyse, campaigns.placeholders
 * .foreign_syntax, campaigns.compliance.footer.ends_with and
 * sinch.placeholders.render do, with the tables and patterns the server
 * exports (campaigns.authoring.writing_help.editor_config), never with
 * copies of them. tests/browser/test_template_editor_in_browser.py runs
 * both on tricky texts and compares. Used by template_writing.js.
 */
"use strict";
window.templateRules = (function () {
  const ESC = "\u001b";

  function makeRules(config) {
    const sms = config.sms;
    return {
      config: config,
      basic: new Set(Array.from(sms.gsm7_basic)),
      extension: new Set(Array.from(sms.gsm7_extension)),
      foreign: new RegExp(config.foreign.pattern, "g"),
      placeholder: new RegExp(config.placeholder, "g"),
    };
  }

  /* --- campaigns.authoring.sms.analyse ---------------------------------- */

  function gsm7Parts(septets, part) {
    // A part ending on an ESC leaves it to the next part.
    let start = 0;
    let parts = 0;
    while (septets.length - start > part) {
      let end = start + part;
      if (septets[end - 1] === ESC) {
        end -= 1;
      }
      start = end;
      parts += 1;
    }
    return parts + 1;
  }

  function ucs2Parts(text, part) {
    // JavaScript strings are UTF-16 code units: a part ending on a high
    // surrogate leaves it to the next part.
    let start = 0;
    let parts = 0;
    while (text.length - start > part) {
      let end = start + part;
      const unit = text.charCodeAt(end - 1);
      if (unit >= 0xd800 && unit <= 0xdbff) {
        end -= 1;
      }
      start = end;
      parts += 1;
    }
    return parts + 1;
  }

  function analyse(text, rules) {
    const sms = rules.config.sms;
    const chars = Array.from(text); // code points, as Python counts them
    const odd = chars.filter(function (c) { return !rules.basic.has(c); });
    const distinct = Array.from(new Set(odd));
    const forcing = distinct.filter(function (c) {
      return !rules.extension.has(c);
    });
    let units;
    let segments;
    if (forcing.length) {
      units = text.length;
      segments = units <= sms.ucs2_single ? 1 : ucs2Parts(text, sms.ucs2_part);
      return { encoding: sms.ucs2, units: units, segments: segments,
               ucs2_chars: forcing };
    }
    units = chars.length + odd.length; // extension characters count twice
    if (units <= sms.gsm7_single) {
      segments = units ? 1 : 0;
    } else {
      const septets = chars.map(function (c) {
        return rules.extension.has(c) ? ESC + c : c;
      }).join("");
      segments = gsm7Parts(septets, sms.gsm7_part);
    }
    return { encoding: sms.gsm7, units: units, segments: segments,
             ucs2_chars: [] };
  }

  /* --- campaigns.placeholders.foreign_syntax ---------------------------- */

  function foreignSyntax(text, rules) {
    const config = rules.config;
    const found = [];
    for (const match of text.matchAll(rules.foreign)) {
      const groups = match.slice(1);
      const group = groups.findIndex(function (name) { return name; });
      found.push({
        written: match[0],
        name: groups[group],
        // 1-based, in characters (code points) as Python counts them.
        position: Array.from(text.slice(0, match.index)).length + 1,
        syntax: config.syntaxes[config.foreign.groups[group]],
      });
    }
    return found;
  }

  /* --- campaigns.compliance.footer -------------------------------------- */

  function plain(value) {
    // footer.ends_with: spaces collapsed, a final "." or "!" dropped, case
    // folded (toLowerCase plus the one common fold it lacks, ß -> ss).
    return value.split(/\s+/).filter(Boolean).join(" ")
      .replace(/[.!]+$/, "").toLowerCase().replace(/ß/g, "ss");
  }

  function footerValues(text, rules) {
    // {tag: value}: "\n" + line, or "" when the text already ends with it.
    const conf = rules.config.footer;
    const values = {};
    if (!conf.enabled) {
      return values;
    }
    const end = plain(text);
    Object.entries(conf.footers).forEach(function ([tag, footer]) {
      const done = end.endsWith(plain(footer.line)) ||
        end.endsWith(plain(footer.opt_out));
      values[tag] = done ? "" : "\n" + footer.line;
    });
    return values;
  }

  function humanise(name) {
    const words = name.replace(/[_.\-]+/g, " ").trim();
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function sampleFor(name, rules) {
    const samples = rules.config.samples;
    return Object.prototype.hasOwnProperty.call(samples, name)
      ? samples[name] : humanise(name);
  }

  function render(text, rules) {
    // sinch.placeholders.render with sample values: [text, sample] pieces.
    const pieces = [];
    let last = 0;
    for (const match of text.matchAll(rules.placeholder)) {
      pieces.push([text.slice(last, match.index), false]);
      pieces.push([sampleFor(match[1], rules), true]);
      last = match.index + match[0].length;
    }
    pieces.push([text.slice(last), false]);
    return pieces.filter(function (piece) { return piece[0]; });
  }

  function renderedText(text, rules) {
    return render(text, rules).map(function (p) { return p[0]; }).join("");
  }

  return {
    make: makeRules,
    analyse: analyse,
    foreignSyntax: foreignSyntax,
    footerValues: footerValues,
    render: render,
    renderedText: renderedText,
  };
})();
