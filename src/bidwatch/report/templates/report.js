(function () {
  "use strict";

  function bodyRows(table) {
    return Array.prototype.slice.call(table.tBodies[0].rows);
  }

  function filter(table) {
    var controls = document.querySelectorAll('[data-filter-for="' + table.id + '"]');
    var shown = 0;
    bodyRows(table).forEach(function (row) {
      var keep = true;
      controls.forEach(function (control) {
        var wanted = control.value;
        if (!wanted || !keep) {
          return;
        }
        var key = control.getAttribute("data-key");
        if (key === "q") {
          keep = (row.getAttribute("data-q") || "").indexOf(wanted.toLowerCase()) >= 0;
        } else {
          keep = row.getAttribute("data-" + key) === wanted;
        }
      });
      row.hidden = !keep;
      if (keep) {
        shown += 1;
      }
    });
    var count = document.querySelector('[data-count-for="' + table.id + '"]');
    if (count) {
      count.textContent = String(shown);
    }
  }

  function value(row, index, numeric) {
    var cell = row.cells[index];
    var raw = cell ? cell.getAttribute("data-v") : null;
    if (numeric) {
      var number = parseFloat(raw === null ? (cell ? cell.textContent : "") : raw);
      return isNaN(number) ? -Infinity : number;
    }
    return (raw === null ? (cell ? cell.textContent : "") : raw).trim().toLowerCase();
  }

  function sort(table, header) {
    var index = Array.prototype.indexOf.call(header.parentNode.children, header);
    var numeric = header.getAttribute("data-sort") === "num";
    var descending = header.getAttribute("aria-sort") !== "descending";
    table.querySelectorAll("th[aria-sort]").forEach(function (other) {
      other.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var rows = bodyRows(table);
    rows.sort(function (a, b) {
      var x = value(a, index, numeric);
      var y = value(b, index, numeric);
      if (x === y) {
        return 0;
      }
      return (x < y ? -1 : 1) * (descending ? -1 : 1);
    });
    var body = table.tBodies[0];
    rows.forEach(function (row) {
      body.appendChild(row);
    });
  }

  document.querySelectorAll("table.ranked").forEach(function (table) {
    table.querySelectorAll("th[data-sort]").forEach(function (header) {
      header.tabIndex = 0;
      header.addEventListener("click", function () {
        sort(table, header);
      });
      header.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sort(table, header);
        }
      });
    });
  });

  document.querySelectorAll("[data-filter-for]").forEach(function (control) {
    control.addEventListener("input", function () {
      var table = document.getElementById(control.getAttribute("data-filter-for"));
      if (table) {
        filter(table);
      }
    });
  });
})();
