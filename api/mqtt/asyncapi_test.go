package mqtt_test

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tendhealth/tend/api/mqtt"
)

// TestAsyncAPIDocument: docs/asyncapi.yaml is an AsyncAPI 3.0 document
// whose channels are the listener's topics and whose every reference into
// the OpenAPI document resolves, so the MQTT bodies stay those of HTTP.
func TestAsyncAPIDocument(t *testing.T) {
	var doc, openapi map[string]any
	for path, v := range map[string]*map[string]any{"../../docs/asyncapi.yaml": &doc, "../openapi/openapi.yaml": &openapi} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if doc["asyncapi"] != "3.0.0" {
		t.Errorf("asyncapi = %v", doc["asyncapi"])
	}
	addresses := map[string]bool{}
	for _, ch := range doc["channels"].(map[string]any) {
		addresses[ch.(map[string]any)["address"].(string)] = true
	}
	for _, topic := range []string{mqtt.TopicReadings, mqtt.TopicSymptoms, mqtt.TopicDevices + "{client}/asks"} {
		if !addresses[topic] {
			t.Errorf("no channel for %s", topic)
		}
	}
	refs := 0
	walk(doc, func(ref string) {
		file, pointer, _ := strings.Cut(ref, "#")
		switch file {
		case "":
			if resolve(doc, pointer) == nil {
				t.Errorf("%s does not resolve", ref)
			}
		case "../api/openapi/openapi.yaml":
			refs++
			if resolve(openapi, pointer) == nil {
				t.Errorf("%s does not resolve in the OpenAPI document", ref)
			}
		default:
			t.Errorf("unexpected reference %s", ref)
		}
	})
	if refs < 5 {
		t.Errorf("only %d references into the OpenAPI document", refs)
	}
}

func walk(v any, f func(ref string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				f(s)
			}
			walk(x, f)
		}
	case []any:
		for _, x := range v {
			walk(x, f)
		}
	}
}

// resolve follows a JSON pointer (RFC 6901) through decoded YAML.
func resolve(v any, pointer string) any {
	for _, part := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		if v, ok = m[part]; !ok {
			return nil
		}
	}
	return v
}
