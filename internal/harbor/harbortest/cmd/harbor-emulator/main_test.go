package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regctl-dev/regctl/internal/harbor/harbortest"
)

// TestServesUntilCancelled: the first stdout line is the JSON with the URL and the admin's
// credentials; they work; the command ends when its context does (SIGTERM in main), exit 0.
func TestServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var stderr strings.Builder
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--password", "demo-password", "--spec", harbortest.SpecPath(t)}, pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	var hello struct{ URL, Username, Password string }
	if err := json.Unmarshal([]byte(line), &hello); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if !strings.HasPrefix(hello.URL, "http://127.0.0.1:") || hello.Username != "admin" || hello.Password != "demo-password" {
		t.Errorf("%+v", hello)
	}
	req, _ := http.NewRequest("POST", hello.URL+"/api/v2.0/projects", strings.NewReader(`{"project_name":"demo"}`))
	req.SetBasicAuth(hello.Username, hello.Password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("create: %d", resp.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop")
	}
}

func TestBadArguments(t *testing.T) {
	var out, errOut strings.Builder
	if code := run(context.Background(), []string{"--nope"}, &out, &errOut); code != 2 {
		t.Errorf("exit %d", code)
	}
	if code := run(context.Background(), []string{"--addr", "256.0.0.1:1"}, &out, &errOut); code != 1 || out.Len() != 0 {
		t.Errorf("exit %d, stdout %q", code, out.String())
	}
}
