package metrics

import (
	"strings"
	"testing"
)

func TestParseStoragePaths(t *testing.T) {
	got, err := ParseStoragePaths([]string{"local=/var/lib/registry", "127.0.0.1:5000=/srv/a=b"}, []string{"local", "127.0.0.1:5000", "prod"})
	if err != nil || got["local"] != "/var/lib/registry" || got["127.0.0.1:5000"] != "/srv/a=b" || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := ParseStoragePaths([]string{"/data/x=y"}, []string{"local"}); err != nil || got["local"] != "/data/x=y" {
		t.Errorf("a bare path with one registry: %v %v", got, err)
	}
	for _, bad := range [][]string{{"/data"}, {"local="}, {"local=/a", "local=/b"}, {"local=/a\x00"}} {
		if _, err := ParseStoragePaths(bad, []string{"local", "prod"}); err == nil || !strings.Contains(err.Error(), "--storage-path") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseStoragePaths(f *testing.F) {
	for _, s := range []string{"local=/var/lib/registry", "/data", "=", "local=", "a=b=c", "prod=/x\x00", "127.0.0.1:5000=/srv"} {
		f.Add(s, "local")
	}
	f.Fuzz(func(t *testing.T, value, name string) {
		regs := []string{name, "prod"}
		for _, r := range [][]string{regs, regs[:1]} {
			got, err := ParseStoragePaths([]string{value}, r)
			if err != nil {
				continue
			}
			for n, p := range got {
				if p == "" || strings.ContainsRune(p, 0) {
					t.Fatalf("%q -> %q: a bad path passed", value, p)
				}
				found := false
				for _, k := range r {
					found = found || k == n
				}
				if !found {
					t.Fatalf("%q -> registry %q not given", value, n)
				}
			}
		}
	})
}
