package api

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// The patient app: an installable web app (PWA) for patients, served at
// /app/ the way the console is served at / — static HTML, CSS and plain
// JavaScript modules with no build step, talking to the same /v1 API with
// the patient's bearer token. Three small files are made from AppConfig
// when asked: config.json (VAPID public key, single sign-on, idle lock,
// branding), manifest.webmanifest (name and colours) and brand.css
// (colours). Its browser test lives in api/app/test and is run by
// app_test.go.
//
//go:embed app/index.html app/sw.js app/assets app/icons
var appFS embed.FS

// AppConfig configures the patient app served at /app/.
type AppConfig struct {
	// Name is the app's name on the home screen and in its header. Defaults
	// to "Tend".
	Name string
	// Color is the brand colour (#rrggbb): header, buttons, links and the
	// installed app's theme. Defaults to #0b5cad. It must keep a contrast
	// of at least 4.5:1 against white (checked by ValidateAppConfig).
	Color string
	// Background is the splash screen's background (#rrggbb). Defaults to
	// #ffffff.
	Background string
	// IdleLock is how long the app may stay unused before it locks. Defaults
	// to 5 minutes; patients may choose a shorter time on their phone.
	IdleLock time.Duration
	// VAPIDPublicKey is the Web Push application server key (unpadded
	// base64url) the app subscribes with. Empty: the app offers no push.
	VAPIDPublicKey string
	// OIDCIssuer and OIDCClientID offer single sign-on through the same
	// provider the API trusts (TEND_OIDC_ISSUER; the client id is
	// TEND_OIDC_AUDIENCE, the audience of the provider's ID tokens). Empty:
	// the app signs in with a token only.
	OIDCIssuer   string
	OIDCClientID string
}

var hexColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// ValidateAppConfig reports a colour that is not #rrggbb or too light for
// white text, or an issuer that is not an http(s) URL.
func ValidateAppConfig(c AppConfig) error {
	for name, v := range map[string]string{"colour": c.Color, "background": c.Background} {
		if v != "" && !hexColor.MatchString(v) {
			return fmt.Errorf("app %s %q is not a colour like #0b5cad", name, v)
		}
	}
	if c.Color != "" && contrastWithWhite(c.Color) < 4.5 {
		return fmt.Errorf("app colour %s is too light: white text on it needs a contrast of at least 4.5:1", c.Color)
	}
	if c.OIDCIssuer != "" {
		u, err := url.Parse(c.OIDCIssuer)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("OIDC issuer %q is not an http(s) URL", c.OIDCIssuer)
		}
	}
	if c.IdleLock < 0 {
		return fmt.Errorf("app idle lock %s is negative", c.IdleLock)
	}
	return nil
}

// contrastWithWhite is WCAG 2's contrast ratio of white on the colour
// #rrggbb.
func contrastWithWhite(hex string) float64 {
	var rgb [3]float64
	for i := range rgb {
		var v int
		_, _ = fmt.Sscanf(hex[1+2*i:3+2*i], "%02x", &v)
		c := float64(v) / 255
		if c <= 0.03928 {
			c /= 12.92
		} else {
			c = math.Pow((c+0.055)/1.055, 2.4)
		}
		rgb[i] = c
	}
	l := 0.2126*rgb[0] + 0.7152*rgb[1] + 0.0722*rgb[2]
	return 1.05 / (l + 0.05)
}

func (c AppConfig) withDefaults() AppConfig {
	if c.Name == "" {
		c.Name = "Tend"
	}
	if c.Color == "" {
		c.Color = "#0b5cad"
	}
	if c.Background == "" {
		c.Background = "#ffffff"
	}
	if c.IdleLock == 0 {
		c.IdleLock = 5 * time.Minute
	}
	return c
}

// appCSP is the console's policy, plus what a PWA needs (its service
// worker and manifest, photos previewed from blob: URLs) and, with single
// sign-on, the provider's origin for discovery and the token exchange.
func appCSP(c AppConfig) string {
	connect := "'self'"
	if u, err := url.Parse(c.OIDCIssuer); err == nil && c.OIDCIssuer != "" {
		connect += " " + u.Scheme + "://" + u.Host
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
		"connect-src " + connect + "; worker-src 'self'; manifest-src 'self'; font-src 'self'; base-uri 'none'; " +
		"form-action 'self'; frame-ancestors 'none'"
}

// appFiles serves the patient app under /app/: the page at /app/, the
// generated config.json, manifest.webmanifest and brand.css, and the
// embedded files. Directories are not listed; the test directory is not
// embedded.
func (s *Server) appFiles() http.HandlerFunc {
	sub, err := fs.Sub(appFS, "app")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	cfg := s.cfg.App.withDefaults()
	csp := appCSP(cfg)
	files := http.StripPrefix("/app/", http.FileServerFS(sub))
	generated := map[string]func() ([]byte, string){
		"config.json":          func() ([]byte, string) { return appConfigJSON(cfg), "application/json" },
		"manifest.webmanifest": func() ([]byte, string) { return appManifest(cfg), "application/manifest+json" },
		"brand.css":            func() ([]byte, string) { return appBrandCSS(cfg), "text/css; charset=utf-8" },
	}
	return func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, "/app/")
		h := w.Header()
		consoleHeaders(h)
		h.Set("Content-Security-Policy", csp)
		if rest == "" {
			b, err := appFS.ReadFile("app/index.html")
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			h.Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(b)
			return
		}
		if gen, ok := generated[rest]; ok {
			b, typ := gen()
			h.Set("Content-Type", typ)
			_, _ = w.Write(b)
			return
		}
		if strings.HasSuffix(rest, "/") || rest == "index.html" {
			writeProblem(w, r, http.StatusNotFound, "Not found", "no such file", nil)
			return
		}
		if rest == "sw.js" {
			// The worker controls /app/ only, and is checked for updates on
			// every navigation.
			h.Set("Service-Worker-Allowed", "/app/")
		}
		files.ServeHTTP(w, r)
	}
}

func appConfigJSON(c AppConfig) []byte {
	out := map[string]any{
		"name":              c.Name,
		"color":             c.Color,
		"idle_lock_seconds": int(c.IdleLock.Seconds()),
		"vapid_public_key":  c.VAPIDPublicKey,
		"api_base":          "",
	}
	if c.OIDCIssuer != "" && c.OIDCClientID != "" {
		out["oidc"] = map[string]string{"issuer": c.OIDCIssuer, "client_id": c.OIDCClientID}
	}
	b, _ := json.Marshal(out)
	return b
}

func appManifest(c AppConfig) []byte {
	icon := func(src, size, purpose string) map[string]string {
		return map[string]string{"src": src, "sizes": size, "type": "image/png", "purpose": purpose}
	}
	b, _ := json.MarshalIndent(map[string]any{
		"name":             c.Name,
		"short_name":       c.Name,
		"description":      "Log your readings, talk to your care team and confirm your doses.",
		"id":               "/app/",
		"start_url":        "/app/",
		"scope":            "/app/",
		"display":          "standalone",
		"theme_color":      c.Color,
		"background_color": c.Background,
		"icons": []map[string]string{icon("icons/icon-192.png", "192x192", "any"), icon("icons/icon-512.png", "512x512", "any"),
			icon("icons/maskable-512.png", "512x512", "maskable")},
	}, "", "  ")
	return b
}

func appBrandCSS(c AppConfig) []byte {
	return fmt.Appendf(nil, ":root {\n  --brand: %s;\n  --brand-bg: %s;\n}\n", c.Color, c.Background)
}
