package config

import (
	"errors"
	"testing"
)

// FuzzLoad: any bytes as a config file must load or fail with a *ValidationError, never panic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(base))
	f.Add(Starter)
	f.Add([]byte("registries: {a: {type: oic}}"))
	f.Add([]byte("registries: [1, 2]"))
	f.Add([]byte("a: &x [*x]"))
	f.Add([]byte("scan: {fail_on: {HIGH: -1}}"))
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := load("fuzz.yaml", data, Sources{Kinds: testKinds})
		var verr *ValidationError
		if err != nil && !errors.As(err, &verr) {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
	})
}
