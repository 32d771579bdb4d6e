// Tabs for the alert pane (the WAI-ARIA tabs pattern): arrow keys, Home and
// End move between tabs and show each at once. On wide screens one tab's
// panel (the conversation) stands beside the others instead: its tab is
// hidden, its panel always shown and no longer a tab panel.

export class Tabs {
  // list: the role=tablist element; wide: a media query; sideTab: the id of
  // the tab whose panel stands aside on wide screens; onShow(id): a tab was
  // shown.
  constructor(list, { wide, sideTab, onShow = () => {} }) {
    this.list = list;
    this.sideTab = sideTab;
    this.onShow = onShow;
    this.media = globalThis.matchMedia ? globalThis.matchMedia(wide) : { matches: false, addEventListener() {} };
    this.selected = this.tabs()[0]?.id;
    list.addEventListener("click", (ev) => {
      const tab = ev.target.closest("[role=tab]");
      if (tab) this.select(tab.id, true);
    });
    list.addEventListener("keydown", (ev) => this.key(ev));
    this.media.addEventListener("change", () => this.layout());
    this.layout();
  }

  tabs() {
    return [...this.list.querySelectorAll("[role=tab]")];
  }

  // usable lists the tabs on offer now (the side tab only on narrow screens).
  usable() {
    return this.tabs().filter((t) => !(this.media.matches && t.id === this.sideTab));
  }

  panel(tab) {
    return document.getElementById(tab.getAttribute("aria-controls"));
  }

  // layout places the side panel for the screen's width.
  layout() {
    const side = document.getElementById(this.sideTab);
    const panel = side && this.panel(side);
    if (panel) {
      if (this.media.matches) {
        panel.removeAttribute("role");
        panel.removeAttribute("aria-labelledby");
      } else {
        panel.setAttribute("role", "tabpanel");
        panel.setAttribute("aria-labelledby", side.id);
      }
    }
    if (this.media.matches && this.selected === this.sideTab) this.selected = this.usable()[0]?.id;
    this.select(this.selected, false);
  }

  // select shows one tab's panel; focus moves to the tab when asked.
  select(id, focus) {
    const wide = this.media.matches;
    for (const t of this.tabs()) {
      const on = t.id === id;
      t.setAttribute("aria-selected", String(on));
      t.tabIndex = on ? 0 : -1;
      const p = this.panel(t);
      if (p) p.hidden = !on && !(wide && t.id === this.sideTab);
    }
    this.selected = id;
    if (focus) document.getElementById(id)?.focus();
    this.onShow(id);
  }

  key(ev) {
    const tabs = this.usable();
    const i = tabs.findIndex((t) => t.id === ev.target.id);
    if (i < 0) return;
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[ev.key];
    if (next === undefined) return;
    ev.preventDefault();
    this.select(tabs[(next + tabs.length) % tabs.length].id, true);
  }
}
