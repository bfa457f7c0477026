// The report page's own style and script, inlined into the HTML: no network,
// no external files. The script reads the data from the page's JSON block,
// draws a squarified treemap (Bruls, Huizing, van Wijk, "Squarified
// Treemaps", 2000) of the node shown, zooms in on a click and out through the
// breadcrumb, and sorts the store-path table by any column.

export const PAGE_STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
h2 { font-size: 1.15em; margin: 1.5em 0 .4em; }
.summary { margin: 0 0 .8em; }
.summary span { margin-right: 1.5em; white-space: nowrap; }
#controls { margin: .4em 0; }
#breadcrumb { margin: .4em 0; font-weight: 600; }
#breadcrumb a { cursor: pointer; color: #1565c0; text-decoration: underline; }
#treemap { position: relative; width: 100%; height: 65vh; min-height: 320px; background: #fafafa; border: 1px solid #ccc; overflow: hidden; }
.box { position: absolute; box-sizing: border-box; border: 1px solid rgba(255,255,255,.9); overflow: hidden; font-size: 12px; color: #111; }
.box.zoomable { cursor: zoom-in; }
.box .label { padding: 1px 3px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; pointer-events: none; }
.box .label b { font-weight: 600; }
table { border-collapse: collapse; }
th, td { padding: 2px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th { cursor: pointer; background: #eee; user-select: none; }
th.sorted-desc::after { content: " \\25BC"; }
th.sorted-asc::after { content: " \\25B2"; }
td.path, th.path { text-align: left; font-family: ui-monospace, monospace; }
.legend span { display: inline-block; margin-right: 1em; }
.legend i { display: inline-block; width: .9em; height: .9em; margin-right: .3em; vertical-align: -1px; }
.warnings { color: #8a4b00; }
`;

// Plain ES2020 for the browser, in a string: no backticks or template
// placeholders inside.
export const PAGE_SCRIPT = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var KINDS = data.kinds;
  var COLORS = {
    disk: '#78909c', table: '#8d6e63', partition: '#5c6bc0', filesystem: '#7986cb', metadata: '#a1a1a1',
    free: '#dcedc8', slack: '#eeeeee', unpartitioned: '#cfcfcf', overhead: '#b0bec5', dir: '#64b5f6',
    file: '#90caf9', store: '#ce93d8', other: '#d7dde0'
  };
  function build(a, parent) {
    var n = { name: a[0], kind: KINDS[a[1]], size: a[2], span: a[3], parent: parent, children: null };
    if (a[4]) n.children = a[4].map(function (c) { return build(c, n); });
    return n;
  }
  Array.prototype.forEach.call(document.querySelectorAll('.swatch'), function (el) {
    el.style.background = el.dataset.kind === 'store-path' ? 'hsl(280, 55%, 68%)' : COLORS[el.dataset.kind];
  });
  var root = build(data.tree, null);
  var current = root;
  var metric = 'size';

  var UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  function human(n) {
    var i = 0;
    var v = n;
    while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + UNITS[i];
  }
  function hue(text) {
    var h = 0;
    for (var i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) >>> 0;
    return h % 360;
  }
  function color(n) {
    if (n.kind === 'store-path') return 'hsl(' + hue(n.name) + ', 55%, 68%)';
    return COLORS[n.kind] || '#ddd';
  }
  function value(n) { return n[metric]; }

  // Rectangles for the values (largest first) in the given area, rows laid
  // along the shorter side while adding to a row keeps its worst aspect ratio down.
  function squarify(items, x, y, w, h) {
    var out = [];
    var total = 0;
    items.forEach(function (it) { total += it.v; });
    if (total <= 0 || w <= 0 || h <= 0) return out;
    var scale = (w * h) / total;
    var areas = items.map(function (it) { return it.v * scale; });
    var i = 0;
    while (i < items.length && w > 0 && h > 0) {
      var side = Math.min(w, h);
      var sum = areas[i];
      var min = areas[i];
      var max = areas[i];
      var worst = Math.max((side * side * max) / (sum * sum), (sum * sum) / (side * side * min));
      var j = i + 1;
      while (j < items.length) {
        var s2 = sum + areas[j];
        var mn = Math.min(min, areas[j]);
        var mx = Math.max(max, areas[j]);
        var w2 = Math.max((side * side * mx) / (s2 * s2), (s2 * s2) / (side * side * mn));
        if (w2 > worst) break;
        sum = s2; min = mn; max = mx; worst = w2; j++;
      }
      var k;
      if (w >= h) {
        var cw = sum / h;
        var yy = y;
        for (k = i; k < j; k++) { var hh = areas[k] / cw; out.push({ item: items[k], x: x, y: yy, w: cw, h: hh }); yy += hh; }
        x += cw; w -= cw;
      } else {
        var rh = sum / w;
        var xx = x;
        for (k = i; k < j; k++) { var ww = areas[k] / rh; out.push({ item: items[k], x: xx, y: y, w: ww, h: rh }); xx += ww; }
        y += rh; h -= rh;
      }
      i = j;
    }
    return out;
  }

  var MAX_BOXES = 400;
  function visible(node) {
    var kids = (node.children || []).filter(function (c) { return value(c) > 0; });
    kids.sort(function (a, b) { return value(b) - value(a); });
    if (kids.length <= MAX_BOXES) return kids.map(function (c) { return { node: c, v: value(c) }; });
    var shown = kids.slice(0, MAX_BOXES - 1).map(function (c) { return { node: c, v: value(c) }; });
    var rest = 0;
    kids.slice(MAX_BOXES - 1).forEach(function (c) { rest += value(c); });
    shown.push({ node: { name: (kids.length - MAX_BOXES + 1) + ' more', kind: 'other', size: 0, span: 0, children: null }, v: rest });
    return shown;
  }
  function percent(n) {
    var t = value(current);
    return t > 0 ? ' (' + ((100 * value(n)) / t).toFixed(1) + '% of ' + current.name + ')' : '';
  }
  function title(n) {
    return n.name + '\n' + human(n.size) + ' stored (' + n.size + ' bytes), ' + human(n.span) + ' of the virtual disk' + percent(n);
  }

  function draw(node, into, x, y, w, h, depth) {
    squarify(visible(node), x, y, w, h).forEach(function (r) {
      var n = r.item.node;
      var el = document.createElement('div');
      el.className = 'box' + (n.children ? ' zoomable' : '');
      el.style.left = r.x + 'px';
      el.style.top = r.y + 'px';
      el.style.width = Math.max(r.w, 1) + 'px';
      el.style.height = Math.max(r.h, 1) + 'px';
      el.style.background = color(n);
      el.title = title(n);
      el.dataset.kind = n.kind;
      if (r.w > 30 && r.h > 14) {
        var label = document.createElement('div');
        label.className = 'label';
        var b = document.createElement('b');
        b.textContent = n.name;
        label.appendChild(b);
        label.appendChild(document.createTextNode(' ' + human(value(n))));
        el.appendChild(label);
      }
      if (n.children) {
        el.addEventListener('click', function (ev) { ev.stopPropagation(); zoom(n); });
        if (depth < 1 && r.w > 60 && r.h > 40) draw(n, el, 2, 18, r.w - 6, r.h - 22, depth + 1);
      }
      into.appendChild(el);
    });
  }

  function crumbs() {
    var nav = document.getElementById('breadcrumb');
    nav.textContent = '';
    var path = [];
    for (var n = current; n; n = n.parent) path.unshift(n);
    path.forEach(function (p, i) {
      if (i > 0) nav.appendChild(document.createTextNode(' \u203a '));
      var label = p.name + ' (' + human(value(p)) + ')';
      if (p === current) { nav.appendChild(document.createTextNode(label)); return; }
      var a = document.createElement('a');
      a.textContent = label;
      a.addEventListener('click', function () { zoom(p); });
      nav.appendChild(a);
    });
  }

  function render() {
    var map = document.getElementById('treemap');
    map.textContent = '';
    crumbs();
    draw(current, map, 0, 0, map.clientWidth, map.clientHeight, 0);
  }
  // The node shown is in the address (#zoom=name/name/...), so a view can be linked to and reloaded.
  function zoom(n) {
    current = n;
    var names = [];
    for (var p = n; p.parent; p = p.parent) names.unshift(encodeURIComponent(p.name));
    history.replaceState(null, '', names.length ? '#zoom=' + names.join('/') : location.pathname + location.search);
    render();
  }
  function fromHash() {
    var m = /^#zoom=(.*)$/.exec(location.hash);
    var n = root;
    if (m) {
      m[1].split('/').forEach(function (part) {
        var name = decodeURIComponent(part);
        var next = (n.children || []).filter(function (c) { return c.name === name; })[0];
        if (next && next.children) n = next;
      });
    }
    return n;
  }
  current = fromHash();

  document.getElementById('metric').addEventListener('change', function (ev) { metric = ev.target.value; render(); });
  window.addEventListener('resize', render);
  render();

  // The store-path table: rows [path, size, span, narSize, closureSize, closureSpan, closureCount].
  var rows = data.storePaths;
  var table = document.getElementById('store-paths');
  if (table) {
    var body = table.querySelector('tbody');
    var heads = Array.prototype.slice.call(table.querySelectorAll('th'));
    var sortCol = 1;
    var desc = true;
    var fill = function () {
      var sorted = rows.slice().sort(function (a, b) {
        var x = a[sortCol];
        var y = b[sortCol];
        var c = typeof x === 'string' ? (x < y ? -1 : x > y ? 1 : 0) : (x === null ? -1 : x) - (y === null ? -1 : y);
        return desc ? -c : c;
      });
      body.textContent = '';
      sorted.forEach(function (r) {
        var tr = document.createElement('tr');
        [[r[0], 'path'], [human(r[1])], [human(r[2])], [r[3] === null ? '-' : human(r[3])], [human(r[4])], [human(r[5])], [String(r[6])]].forEach(function (c) {
          var td = document.createElement('td');
          td.textContent = c[0];
          if (c[1]) td.className = c[1];
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
      heads.forEach(function (th, i) {
        th.classList.remove('sorted-asc', 'sorted-desc');
        if (i === sortCol) th.classList.add(desc ? 'sorted-desc' : 'sorted-asc');
      });
    };
    heads.forEach(function (th, i) {
      th.addEventListener('click', function () {
        if (sortCol === i) desc = !desc;
        else { sortCol = i; desc = i !== 0; }
        fill();
      });
    });
    fill();
  }
})();
`;
