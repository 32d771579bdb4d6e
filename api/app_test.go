package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/api"
)

// TestAppServed checks the patient app's files, the files made from its
// configuration, and the headers that keep it to its own origin; it needs
// no database and no browser.
func TestAppServed(t *testing.T) {
	t.Parallel()
	srv, err := api.New(api.Config{App: api.AppConfig{Name: "Heartline", Color: "#7a1f5c", VAPIDPublicKey: "BPub",
		OIDCIssuer: "https://id.example.org/realm", OIDCClientID: "tend-app", IdleLock: 2 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	c, r := servePage(t, srv, "/app/", "script-src 'self'", "worker-src 'self'", "manifest-src 'self'", "frame-ancestors 'none'",
		"connect-src 'self' https://id.example.org;")
	page := string(r.body)
	if !strings.Contains(page, "<title>Tend</title>") || strings.Contains(page, "<script>") || strings.Contains(page, " style=") {
		t.Error("index.html: the title is not the fixed one, or the page has inline script or style")
	}
	var cfg struct {
		Name      string `json:"name"`
		VAPID     string `json:"vapid_public_key"`
		IdleLock  int    `json:"idle_lock_seconds"`
		OIDC      struct{ Issuer, ClientID string }
		RawClient string `json:"-"`
	}
	r = c.do("GET", "/app/config.json", nil)
	r.decode(t, &cfg)
	if cfg.Name != "Heartline" || cfg.VAPID != "BPub" || cfg.IdleLock != 120 || !strings.Contains(string(r.body), `"client_id":"tend-app"`) {
		t.Errorf("config.json: %s", r.body)
	}
	var man struct {
		Name, Scope, Display string
		StartURL             string `json:"start_url"`
		Theme                string `json:"theme_color"`
		Icons                []struct{ Src, Sizes, Purpose string }
	}
	r = c.do("GET", "/app/manifest.webmanifest", nil)
	r.decode(t, &man)
	if man.Name != "Heartline" || man.StartURL != "/app/" || man.Scope != "/app/" || man.Display != "standalone" ||
		man.Theme != "#7a1f5c" || len(man.Icons) != 3 {
		t.Errorf("manifest: %s", r.body)
	}
	for _, icon := range man.Icons {
		if r := c.do("GET", "/app/"+icon.Src, nil); r.status != http.StatusOK || r.header.Get("Content-Type") != "image/png" {
			t.Errorf("icon %s: %d %s", icon.Src, r.status, r.header.Get("Content-Type"))
		}
	}
	if r := c.do("GET", "/app/brand.css", nil); !strings.Contains(string(r.body), "--brand: #7a1f5c") {
		t.Errorf("brand.css: %s", r.body)
	}
}

// TestAppFilesServed: every file the page, its modules and the worker load
// is served with its type, the worker keeps each for offline use, and
// nothing else is served.
func TestAppFilesServed(t *testing.T) {
	t.Parallel()
	srv, err := api.New(api.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	c := client{t: t, base: hs.URL}
	files, err := filepath.Glob(filepath.Join("app", "assets", "*"))
	if err != nil || len(files) < 10 {
		t.Fatalf("app assets: %v %v", files, err)
	}
	for _, f := range append(files, "app/sw.js") {
		path := "/" + filepath.ToSlash(f)
		typ := map[string]string{".js": "text/javascript", ".css": "text/css"}[filepath.Ext(f)]
		if r := c.do("GET", path, nil); r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), typ) {
			t.Errorf("GET %s: %d %q", path, r.status, r.header.Get("Content-Type"))
		}
	}
	sw := c.do("GET", "/app/sw.js", nil)
	if sw.header.Get("Service-Worker-Allowed") != "/app/" {
		t.Errorf("sw.js headers: %v", sw.header)
	}
	// The service worker keeps every file the app loads, so that it opens
	// offline.
	for _, f := range files {
		if name := filepath.ToSlash(strings.TrimPrefix(f, "app"+string(filepath.Separator))); !strings.Contains(string(sw.body), `"`+name+`"`) {
			t.Errorf("sw.js does not keep %s for offline use", name)
		}
	}
	for _, path := range []string{"/app/assets/", "/app/index.html", "/app/test/package.json", "/app/test/app.test.mjs", "/app/nope.js"} {
		if r := c.do("GET", path, nil); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, r.status)
		}
	}
}

// TestAppConfigRefused: a colour that white text cannot be read on, or
// that is not a colour, stops the server from starting.
func TestAppConfigRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []api.AppConfig{{Color: "#ffdd00"}, {Color: "blue"}, {Background: "#fff"}, {OIDCIssuer: "ftp://x"}} {
		if _, err := api.New(api.Config{App: c}); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
	if _, err := api.New(api.Config{App: api.AppConfig{Color: "#0b5cad"}}); err != nil {
		t.Errorf("the default colour: %v", err)
	}
}

// TestCORS: an origin listed in AllowedOrigins gets its preflight answered
// and may read /v1 answers; any other origin gets no CORS headers.
func TestCORS(t *testing.T) {
	t.Parallel()
	srv, err := api.New(api.Config{AllowedOrigins: []string{"https://app.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	pre := func(origin string) *http.Response {
		r := httptest.NewRequest("OPTIONS", "/v1/threads", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		r.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w.Result()
	}
	res := pre("https://app.example.org")
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.org" ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		res.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("allowed preflight: %d %v", res.StatusCode, res.Header)
	}
	if res := pre("https://evil.example"); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin: %v", res.Header)
	}
	r := httptest.NewRequest("GET", "/v1/threads", nil)
	r.Header.Set("Origin", "https://app.example.org")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example.org" {
		t.Errorf("an answer to the allowed origin: %d %v", w.Code, w.Header())
	}
}

// TestAppModules runs the unit tests of the app's DOM-free logic (units,
// ranges, field errors in words, the usual range, the idle lock) in Node.
func TestAppModules(t *testing.T) {
	t.Parallel()
	runNodeUnits(t, pageTestDir(t, "app"), "units.test.mjs", "the patient app's unit tests")
}

// appResult is what the browser test reports on its last line.
type appResult struct {
	// IdleMS is how long the app waited without input before it said the
	// patient was away; AwaySeen and BackSeen what the Go side found the
	// clinician sees then and after the next key press.
	IdleMS          int            `json:"idle_ms"`
	AwaySeen        string         `json:"away_seen"`
	BackSeen        string         `json:"back_seen"`
	RetakeCountdown string         `json:"retake_countdown"`
	RetakeAnswered  string         `json:"retake_answered"`
	FieldError      string         `json:"field_error"`
	OfflineSaved    string         `json:"offline_saved"`
	LostResponse    int            `json:"lost_response"`
	OfflineStart    string         `json:"offline_start"`
	SymptomInThread []string       `json:"symptom_in_thread"`
	Receipt         string         `json:"receipt"`
	UrgentReply     string         `json:"urgent_reply"`
	Typing          string         `json:"typing"`
	Available       string         `json:"available"`
	Photo           bool           `json:"photo_shown"`
	Dose            string         `json:"dose"`
	Adherence       []string       `json:"adherence"`
	Chart           string         `json:"chart"`
	PushView        string         `json:"push_view"`
	PushRetake      string         `json:"push_retake"`
	PushTitle       string         `json:"push_title"`
	Axe             map[string]int `json:"axe"`
	Overflow        map[string]int `json:"overflow"`
	SmallTargets    map[string]int `json:"small_targets"`
	Titles          []string       `json:"titles"`
	SignedOut       struct {
		IndexedDB []string `json:"indexeddb"`
		Storage   []string `json:"storage"`
		Caches    []string `json:"caches"`
	} `json:"signed_out"`
	FahrenheitHint  string `json:"fahrenheit_hint"`
	FahrenheitSaved string `json:"fahrenheit_saved"`
	Locked          struct {
		Title string
		Main  int
		Nav   bool
	} `json:"locked"`
	Unlocked    bool   `json:"unlocked"`
	PushKey     string `json:"push_key"`
	PushDevices int    `json:"push_devices"`
	SecondTab   string `json:"second_tab"`
	OIDC        string `json:"oidc"`
	OpenTabLink string `json:"open_tab_link"`
	Installable bool   `json:"installable"`
}

func (r appResult) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}
