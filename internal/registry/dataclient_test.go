package registry_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/regctl-dev/regctl/internal/localreg/localregtest"
	"github.com/regctl-dev/regctl/internal/registry"
)

// A registry whose /v2/ ping carries no bearer challenge authorises every request alike, so one
// client, and one ping, serves every repository of a run.
func TestDataClientsShareOnePingWithoutBearerChallenge(t *testing.T) {
	var mu sync.Mutex
	pings := 0
	agents := map[string]bool{}
	srv := localregtest.Start(t, localregtest.Options{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if r.URL.Path == "/v2/" {
				pings++
			}
			if strings.HasSuffix(r.URL.Path, "/tags/list") {
				agents[r.Header.Get("User-Agent")] = true
			}
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	}})
	reg := openHost(t, srv.Host)
	seed(t, reg, "one")
	seed(t, reg, "two")
	mu.Lock()
	pings = 0
	mu.Unlock()
	ctx := context.Background()
	data := reg.(registry.DataPlane)
	first, err := data.DataClient(ctx, "repository:one:pull")
	if err != nil {
		t.Fatal(err)
	}
	second, err := data.DataClient(ctx, "repository:two:pull", "repository:one:pull")
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Error("an anonymous registry got a client per scope")
	}
	for _, repo := range []string{"one", "two"} {
		if tags, err := reg.Tags(ctx, repo); err != nil || len(tags) == 0 {
			t.Fatalf("%s: tags %v, %v", repo, tags, err)
		}
	}
	resp, err := second.Get("http://" + srv.Host + "/v2/two/tags/list")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the shared client on another repository: %v %v", resp, err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if pings != 2 { // the challenge, then go-containerregistry's handshake
		t.Errorf("%d pings, want 2", pings)
	}
	for ua := range agents {
		if !strings.HasPrefix(ua, "regctl") {
			t.Errorf("a data-plane request went as %q, not as regctl", ua)
		}
	}
	if len(agents) == 0 {
		t.Error("no tag listing was seen")
	}
}

// A bearer challenge means tokens are scoped: each scope set gets its own client and token, and a
// client sends only its own.
func TestDataClientsKeepATokenPerScopeWithBearerChallenge(t *testing.T) {
	var mu sync.Mutex
	var tokenScopes []string
	sent := map[string]string{} // repository -> Authorization
	var host string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case r.URL.Path == "/token":
			scope := strings.Join(r.URL.Query()["scope"], " ")
			tokenScopes = append(tokenScopes, scope)
			json.NewEncoder(w).Encode(map[string]string{"token": "tok:" + scope})
		case r.Header.Get("Authorization") == "":
			w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+host+`/token",service="test"`)
			w.WriteHeader(http.StatusUnauthorized)
		case strings.HasSuffix(r.URL.Path, "/tags/list"):
			repo := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v2/"), "/tags/list")
			sent[repo] = r.Header.Get("Authorization")
			json.NewEncoder(w).Encode(map[string]any{"name": repo, "tags": []string{"v1"}})
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(srv.Close)
	host = strings.TrimPrefix(srv.URL, "http://")
	reg := registry.NewOCI(registry.OCIConfig{Name: "bearer", Host: host, Insecure: true, Keychain: authn.NewMultiKeychain()})
	ctx := context.Background()
	a, err := reg.DataClient(ctx, "repository:a:pull")
	if err != nil {
		t.Fatal(err)
	}
	b, err := reg.DataClient(ctx, "repository:b:pull")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("one client for two bearer scopes")
	}
	if again, _ := reg.DataClient(ctx, "repository:a:pull"); again != a {
		t.Error("the same scope got a second client (and token exchange)")
	}
	for repo, c := range map[string]*http.Client{"a": a, "b": b} {
		resp, err := c.Get(srv.URL + "/v2/" + repo + "/tags/list")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(tokenScopes, ",") != "repository:a:pull,repository:b:pull" {
		t.Errorf("token requests for scopes %q", tokenScopes)
	}
	for _, repo := range []string{"a", "b"} {
		if want := "Bearer tok:repository:" + repo + ":pull"; sent[repo] != want {
			t.Errorf("%s was sent %q, want %q", repo, sent[repo], want)
		}
	}
}

// The base transport keeps a connection per request in flight for the next ones: net/http's default
// of 2 idle connections per host would close and dial again all but 2 after every round of
// parallel requests (176 connections for one backup of 30 repositories, measured).
func TestBaseTransportKeepsParallelConnections(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // keep the round's requests in flight together
	}))
	t.Cleanup(srv.Close)
	tr, err := registry.BaseTransport(nil, false, "")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr}
	const parallel, rounds = 12, 3
	for range rounds {
		var wg sync.WaitGroup
		for range parallel {
			wg.Go(func() {
				resp, err := client.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		wg.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) > parallel+parallel/2 {
		t.Errorf("%d connections for %d rounds of %d requests: idle connections are closed", len(conns), rounds, parallel)
	}
}
