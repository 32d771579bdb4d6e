package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tendhealth/tend/api"
)

// TestFHIRFullURLsAreAbsolute: a transaction response's and a searchset's
// entries carry fullUrl as an absolute URL (R4), the same one for the same
// resource: under the configured public URL, else under the request's
// scheme and Host.
func TestFHIRFullURLsAreAbsolute(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	// A second server on the same engine, with a public URL configured.
	configured, err := api.New(api.Config{Engine: s.eng, PublicURL: "https://tend.example.org/"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(configured)
	t.Cleanup(hs.Close)
	for _, c := range []struct{ base, want string }{
		{hs.URL, "https://tend.example.org/fhir/r4/Observation/"},
		{s.clinician.base, s.clinician.base + "/fhir/r4/Observation/"},
	} {
		cl := s.clinician
		cl.base = c.base
		obs := obsJSON(ref(s.patientID), "8867-4", `"valueQuantity":{"value":72,"unit":"/min"}`, time.Now().UTC().Format(time.RFC3339))
		var out struct {
			Entry []struct {
				FullURL  string `json:"fullUrl"`
				Resource struct{ ID string }
				Response struct{ Location string }
			}
		}
		r := cl.do("POST", "/fhir/r4", bundleJSON("transaction", obs))
		r.decode(t, &out)
		if r.status != http.StatusOK || len(out.Entry) != 1 || out.Entry[0].FullURL != c.want+out.Entry[0].Resource.ID ||
			!strings.HasPrefix(out.Entry[0].Response.Location, "Observation/") {
			t.Fatalf("transaction at %s: %d %s", c.base, r.status, r.body)
		}
		id := out.Entry[0].Resource.ID
		r = cl.do("GET", "/fhir/r4/Observation?patient="+s.patientID+"&_count=500", nil)
		r.decode(t, &out)
		found := false
		for _, e := range out.Entry {
			found = found || e.Resource.ID == id && e.FullURL == c.want+id
		}
		if r.status != http.StatusOK || !found {
			t.Errorf("searchset at %s lacks fullUrl %s: %s", c.base, c.want+id, r.body)
		}
	}
	if _, err := api.New(api.Config{PublicURL: "tend.example.org"}); err == nil {
		t.Error("a public URL without a scheme was accepted")
	}
}
