// The phone's settings: units, text size, contrast and a shorter idle lock.
// They say nothing about the patient's health, so they stay after sign-out.

const KEY = "tend.app.prefs";
export const TEXT_SIZES = [100, 125, 150, 175, 200];

export function prefs() {
  try {
    return { text_size: 100, contrast: "normal", ...JSON.parse(localStorage.getItem(KEY) || "{}") };
  } catch {
    return { text_size: 100, contrast: "normal" };
  }
}

export function savePrefs(p) {
  localStorage.setItem(KEY, JSON.stringify(p));
  applyLook(p);
}

// applyLook sets the text size (the root font size every length is
// relative to) and the contrast theme.
export function applyLook(p) {
  const root = document.documentElement;
  const size = TEXT_SIZES.includes(Number(p.text_size)) ? Number(p.text_size) : 100;
  root.style.fontSize = `${size}%`;
  root.classList.toggle("high-contrast", p.contrast === "high");
}
