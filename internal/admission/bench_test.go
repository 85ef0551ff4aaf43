package admission_test

import (
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkVerifyWebhookWarm is the load test: reviews of a Pod with a signed tag and a signed
// digest, posted over TLS by 8 clients to the webhook on 127.0.0.1 against the embedded registry,
// with a warm cache (the tag is still resolved each review: one HEAD). Each iteration is 2,000
// reviews; p50 and p99 latency are reported.
func BenchmarkVerifyWebhookWarm(b *testing.B) {
	e := setup(b, true)
	body := reviewJSON("v1", "CREATE", podJSON(e.repo.Tag("signed").String(), e.repo.Digest(e.digests["signed"]).String()), "")
	client := e.srv.Client()
	post := func() (time.Duration, bool) {
		start := time.Now()
		resp, err := client.Post(e.srv.URL+"/verify", "application/json", strings.NewReader(body))
		if err != nil {
			return 0, false
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return time.Since(start), resp.StatusCode == http.StatusOK && strings.Contains(string(out), `"allowed":true`)
	}
	if _, ok := post(); !ok { // warms the cache
		b.Fatal("the warm-up review was not allowed")
	}
	const reviews, clients = 2000, 8
	var all []time.Duration
	b.ResetTimer()
	for range b.N {
		lat := make([]time.Duration, reviews)
		var wg sync.WaitGroup
		var failed sync.Once
		next := make(chan int, reviews)
		for i := range reviews {
			next <- i
		}
		close(next)
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					d, ok := post()
					if !ok {
						failed.Do(func() { b.Error("a review failed or was denied") })
					}
					lat[i] = d
				}
			}()
		}
		wg.Wait()
		all = append(all, lat...)
	}
	b.StopTimer()
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(reviews), "reviews/op")
}
