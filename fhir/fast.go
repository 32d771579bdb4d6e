package fhir

import (
	"errors"
	"fmt"
	"reflect"
	"time"
)

// The fast path. Decoding through golang-fhir-models with encoding/json is
// reflection-heavy, and it was most of the cost of a Bundle of vital signs.
// Most inbound Observations have one plain shape, so a small hand-written
// scanner reads that shape straight into the same r4 values the full
// decoder would fill; the mapping, every check and every error after that
// are the shared code (readObservation). The scanner takes only what it is
// sure the full decoder reads the same way — the elements Tend maps plus a
// few harmless ones, spelled exactly (encoding/json also matches other
// cases), each once, with strings free of escapes and invalid UTF-8, no
// null, and the JSON grammar checked — and gives up on anything else:
// the caller then runs the full decoder, which accepts or rejects the
// document and names what is wrong exactly as before. The tests run both
// paths over every fixture and fuzz the scanner against the full decoder.

// CheckFastPath decodes data (an Observation or a Bundle) both ways, the
// fast path and the full decoder, and returns an error when they disagree
// on the result or any error (the error names what differs, never a value:
// documents hold health data). fast reports whether the fast path took the
// document at all (when it does not, only the full decoder ever reads it).
// For tests and fuzzing.
func CheckFastPath(data []byte, now time.Time) (fast bool, err error) {
	if obs, ok := fastObservation(data); ok {
		// The same elements decoded...
		var full observationIn
		if err := strictDecode(data, &full); err != nil || !reflect.DeepEqual(obs, &full) {
			return true, errors.New("observation: the fast path and the full decoder read different elements")
		}
		// ...and the same outcome.
		gotIn, gotErr := readObservation(obs, now)
		wantIn, wantErr := decodeObservationFull(data, now)
		if !reflect.DeepEqual(gotIn, wantIn) || !reflect.DeepEqual(gotErr, wantErr) {
			return true, errors.New("observation: the fast path and the full decoder map it differently")
		}
		fast = true
	}
	if fb, ok := scanBundle(data); ok {
		var full bundleTyped
		if err := strictDecode(data, &full); err != nil || len(full.Entry) != len(fb.entries) {
			return true, fmt.Errorf("bundle: the fast path read %d entries, the full decoder %d", len(fb.entries), len(full.Entry))
		}
		for i, e := range full.Entry {
			if !reflect.DeepEqual(fb.entries[i], e.Resource) || fb.fullURLs[i] != deref(e.FullUrl) {
				return true, fmt.Errorf("bundle entry %d: the fast path and the full decoder read different elements", i)
			}
		}
		b, dec, _ := fastBundle(data, now)
		wantB, wantDec, wantErr := readBundleFull(data, now)
		if wantErr != nil || !reflect.DeepEqual(b, wantB) || !reflect.DeepEqual(dec, wantDec) {
			return true, errors.New("bundle: the fast path and the full decoder map it differently")
		}
		fast = true
	}
	return fast, nil
}

// fastObservation reads one Observation document the fast way; ok is false
// when the document is not of the plain shape.
func fastObservation(data []byte) (*observationIn, bool) {
	s := newScanner(data)
	obs := s.observation()
	if !s.end() {
		return nil, false
	}
	return obs, true
}

// fastBundle reads a Bundle of Observations the fast way; ok is false when
// it is not of the plain shape or not a sound envelope (readBundleTyped's
// conditions), so that the caller's full path decides.
func fastBundle(data []byte, now time.Time) (Bundle, []Decoded, bool) {
	fb, ok := scanBundle(data)
	if !ok {
		return Bundle{}, nil, false
	}
	return readEntries(fb.typ == "transaction", len(fb.entries), func(i int) (string, *observationIn) {
		return fb.fullURLs[i], fb.entries[i]
	}, now)
}

// scannedBundle is a Bundle as the fast path read it.
type scannedBundle struct {
	typ      string
	entries  []*observationIn
	fullURLs []string
}

// scanBundle reads a Bundle of the plain shape with a sound envelope.
func scanBundle(data []byte) (scannedBundle, bool) {
	s := newScanner(data)
	var (
		fb           scannedBundle
		resourceType string
		sound        = true
		seen         uint32
	)
	if s.enter('{') {
		for n := 0; s.more('}', &n); {
			switch s.key() {
			case "resourceType":
				s.once(&seen, 1<<0)
				resourceType = s.str()
			case "type":
				s.once(&seen, 1<<1)
				fb.typ = s.str()
			case "entry":
				s.once(&seen, 1<<2)
				fb.entries = make([]*observationIn, 0, 64)
				if !s.enter('[') {
					break
				}
				for n := 0; s.more(']', &n); {
					obs, fullURL, ok := s.entry()
					sound = sound && ok
					fb.entries, fb.fullURLs = append(fb.entries, obs), append(fb.fullURLs, fullURL)
				}
			default:
				s.fail()
			}
		}
	}
	ok := s.end() && sound && resourceType == "Bundle" && (fb.typ == "transaction" || fb.typ == "batch") &&
		len(fb.entries) > 0 && len(fb.entries) <= MaxEntries
	return fb, ok
}

// entry reads one Bundle entry; sound is false unless it is a POST of an
// Observation with its resource.
func (s *scanner) entry() (obs *observationIn, fullURL string, sound bool) {
	var method, url string
	var hasRequest bool
	var seen uint32
	if !s.enter('{') {
		return nil, "", false
	}
	for n := 0; s.more('}', &n); {
		switch s.key() {
		case "fullUrl":
			s.once(&seen, 1<<0)
			fullURL = s.str()
		case "resource":
			s.once(&seen, 1<<1)
			obs = s.observation()
		case "request":
			s.once(&seen, 1<<2)
			hasRequest = true
			var seenReq uint32
			if !s.enter('{') {
				break
			}
			for n := 0; s.more('}', &n); {
				switch s.key() {
				case "method":
					s.once(&seenReq, 1<<0)
					method = s.str()
				case "url":
					s.once(&seenReq, 1<<1)
					url = s.str()
				default:
					s.fail()
				}
			}
		default:
			s.fail()
		}
	}
	return obs, fullURL, hasRequest && method == "POST" && (url == "Observation" || url == "Observation/") && obs != nil
}
