package api

import (
	"encoding/json"
	"testing"
)

// BenchmarkDecodeBatch decodes a batch of 500 readings as postReadings does
// (sanitiser, then strict decoding), against plain strict decoding alone.
func BenchmarkDecodeBatch(b *testing.B) {
	items := make([]map[string]any, 500)
	for i := range items {
		items[i] = map[string]any{"kind": "heart_rate", "value": 70 + i%30, "unit": "/min",
			"observed_at": "2026-11-22T08:00:00Z", "source_id": "cuff:123456:" + string(rune('a'+i%26))}
	}
	body, _ := json.Marshal(map[string]any{"readings": items})
	b.Run("sanitised", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var v readingsBody
			if err := decodeBody(body, &v, 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json only", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var v readingsBody
			if err := json.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
