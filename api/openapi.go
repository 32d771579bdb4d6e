package api

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"

	"gopkg.in/yaml.v3"
)

// The API contract is written as YAML (easier to review) and served as
// JSON; the test in openapi_test.go holds it to the router both ways and
// validates the API tests' requests and responses against it.
//
//go:embed openapi/openapi.yaml
var openAPIYAML []byte

//go:embed static/docs
var docsFS embed.FS

// OpenAPIJSON returns the OpenAPI 3.1 document as JSON.
func OpenAPIJSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return b, nil
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	b, err := OpenAPIJSON()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

// docs serves the API reference page: Swagger UI (from npm
// swagger-ui-dist 5.35.0, committed minified under static/docs) reading
// /openapi.json.
func (s *Server) docs(w http.ResponseWriter, r *http.Request) {
	sub, _ := fs.Sub(docsFS, "static/docs")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.StripPrefix("/docs/", http.FileServerFS(sub)).ServeHTTP(w, r)
}
