package lifecycle

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkEvaluate100k evaluates the seed policy over 100,000 images (the
// ECR per-repository quota) with a mix of prod, staging, dev, untagged and
// unmatched images.
func BenchmarkEvaluate100k(b *testing.B) {
	data, err := os.ReadFile(seedPolicyPath)
	if err != nil {
		b.Fatal(err)
	}
	p, err := Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	images := make([]Image, 100_000)
	for i := range images {
		n := strconv.Itoa(i)
		im := &images[i]
		im.ID = "sha256:" + strconv.FormatUint(uint64(i)*0x9e3779b97f4a7c15, 16)
		// Every 7th image shares its push time with the previous one (ties).
		im.PushedAt = now.Add(-time.Duration(i-i%7/6) * time.Minute)
		switch i % 5 {
		case 0:
			im.Tags = []string{"prod-" + n, "v1." + n}
		case 1:
			im.Tags = []string{"staging-" + n, "stage-" + n}
		case 2:
			im.Tags = []string{"dev-" + n, "feature-" + n, "latest-dev"}
		case 3:
			// untagged
		case 4:
			im.Tags = []string{"other-" + n}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if ds := Evaluate(p, images, now); len(ds) != len(images) {
			b.Fatal("wrong number of decisions")
		}
	}
}
