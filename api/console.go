package api

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// The web triage console: static HTML, CSS and plain JavaScript modules with
// no build step, plus uPlot (npm uplot 1.6.32, dist files committed under
// console/vendor; api/console/test checks they are the release's). The page
// talks to the same /v1 API as every other client, with the user's bearer
// token, so it needs no server-side session and no handler of its own beyond
// serving files. Its browser test lives in api/console/test and is run by
// console_test.go.
//
//go:embed console/index.html console/favicon.ico console/assets console/vendor
var consoleFS embed.FS

// consoleCSP confines the page to its own origin: no inline script or style,
// no framing, no third-party requests. uPlot sets element styles through the
// CSSOM, which style-src does not restrict. Audio and video attachments play
// from blob: URLs of files fetched with the token. Workers run the console's
// own scripts only (the key-wrapping pool of end-to-end encryption).
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src blob:; " +
	"connect-src 'self'; worker-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// consoleHeaders sets the security headers every console response carries.
func consoleHeaders(h http.Header) {
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// The files are not content-hashed: revalidate so an upgrade shows at
	// once.
	h.Set("Cache-Control", "no-cache")
}

// consoleIndex serves the console's single page at /.
func (s *Server) consoleIndex(w http.ResponseWriter, r *http.Request) {
	b, err := consoleFS.ReadFile("console/index.html")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	consoleHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

// favicon serves the console's icon at /favicon.ico, where browsers look
// for it.
func (s *Server) favicon(w http.ResponseWriter, r *http.Request) {
	b, err := consoleFS.ReadFile("console/favicon.ico")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	consoleHeaders(w.Header())
	w.Header().Set("Content-Type", "image/x-icon")
	_, _ = w.Write(b)
}

// consoleAssets serves the console's scripts, styles and vendored library
// under /console/. Directories are not listed.
func (s *Server) consoleAssets() http.HandlerFunc {
	sub, err := fs.Sub(consoleFS, "console")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	files := http.StripPrefix("/console/", http.FileServerFS(sub))
	return func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, "/console/")
		if rest == "" || strings.HasSuffix(rest, "/") || rest == "index.html" {
			writeProblem(w, r, http.StatusNotFound, "Not found", "no such file", nil)
			return
		}
		consoleHeaders(w.Header())
		files.ServeHTTP(w, r)
	}
}
