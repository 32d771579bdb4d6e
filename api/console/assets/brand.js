// The organisation's branding (GET /v1/me's organisation), shown by the
// console and the patient app: its name, its logo, and its colour as a
// decorative band along the top of the page. The colour never carries text
// (an organisation's colour may not contrast with it), so the page stays
// readable whatever the organisation chose.

// applyBranding shows org's branding in the element with id nameId (its
// name) and the one with id logoId (an <img>, hidden without a logo); api
// fetches the logo with the caller's token. It returns a function that
// undoes it (on sign-out).
export async function applyBranding(api, org, { nameId, logoId }) {
  const root = document.documentElement;
  const name = document.getElementById(nameId);
  const logo = document.getElementById(logoId);
  if (!org) return () => {};
  const before = name ? name.textContent : "";
  if (name) name.textContent = org.branding?.name || org.name;
  if (org.branding?.primary_color) {
    root.style.setProperty("--brand", org.branding.primary_color);
    root.classList.add("branded");
  }
  let url = "";
  if (logo && org.branding?.logo_url) {
    try {
      const res = await api.fetch(org.branding.logo_url, { headers: api.headers({ Accept: "image/*" }), cache: "default" });
      if (res.ok) {
        url = URL.createObjectURL(await res.blob());
        logo.src = url;
        logo.alt = `${org.branding?.name || org.name} logo`;
        logo.hidden = false;
      }
    } catch {
      // No logo is fine: the name is shown.
    }
  }
  return () => {
    if (name) name.textContent = before;
    root.style.removeProperty("--brand");
    root.classList.remove("branded");
    if (logo) {
      logo.hidden = true;
      logo.removeAttribute("src");
    }
    if (url) URL.revokeObjectURL(url);
  };
}
