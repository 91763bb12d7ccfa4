package backup

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeManifest: a manifest the decoder takes has a format this
// package reads, and survives encoding and decoding again unchanged.
func FuzzDecodeManifest(f *testing.F) {
	for _, s := range []string{
		`{"format":1,"id":"20261121T193000Z-ab12cd","created_at":"2026-11-21T19:30:00Z","duration_ms":1234,"reason":"before-upgrade","ferry_version":"v1.2.3",` +
			`"database":{"kind":"postgres","name":"orders","address":"db:5432","url":"postgres://app@db:5432/orders","server_version":"16.2","history_table":"ferry_history"},` +
			`"schema_version":20261120000000,"upgrade":{"from_version":1,"to_version":3,"migrations":[2,3]},"tool":{"name":"pg_dump","version":"16.2"},` +
			`"objects":[{"name":"dump.pgcustom","format":"pg_dump-custom","compression":"none","size":10,"raw_size":10,"sha256":"ab"}],` +
			`"tables":[{"name":"public.items","rows":3}],"consistency":"snapshot"}`,
		`{"format":1,"id":"20261121T193000Z-ab12cd","created_at":"2026-11-21T20:30:00.123456789+01:00","reason":"manual","objects":[],"tables":null,"upgrade":null}`,
		`{"format": 1, "id": "`,
		`{"format":0}`,
		`{"format":2}`,
		`{"format":-1}`,
		`{"format":1.0}`,
		`{"Format":1,"ID":"x","unknown":true}`,
		`{"format":1,"format":3}`,
		`{"format":1,"created_at":"0000-01-01T00:00:00Z","id":"\ud800"}`,
		`{"format":1,"created_at":"9999-12-31T23:59:59.999999999-23:59"}`,
		`{"format":1,"created_at":"2026-11-21T20:30:00.123456789+00:00"}`,
		`{"format":1,"created_at":"2026-11-21T20:30:00-00:00"}`,
		`null`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeManifest(data)
		if err != nil {
			if m != nil {
				t.Fatalf("decodeManifest(%q): a manifest and an error", data)
			}
			return
		}
		if m.Format < 1 || m.Format > ManifestFormat {
			t.Fatalf("decodeManifest(%q): took format %d", data, m.Format)
		}
		enc, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("decodeManifest(%q) gave a manifest that does not encode: %v", data, err)
		}
		again, err := decodeManifest(enc)
		if err != nil {
			t.Fatalf("decodeManifest(%q) gave a manifest whose encoding %s does not decode: %v", data, enc, err)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("decodeManifest(%q) = %+v, encoded and decoded again %+v", data, m, again)
		}
		enc2, err := json.Marshal(again)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("decodeManifest(%q): encoded %s, then %s (%v)", data, enc, enc2, err)
		}
	})
}
