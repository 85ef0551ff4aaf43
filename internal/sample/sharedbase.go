package sample

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The benchmarks' shape, the one the backup and replicate issues were measured on: 30 repositories
// x 4 tags, a shared 20 MiB base and 1 MiB of each image's own (142 MiB of distinct content).
const (
	BenchRepos   = 30
	BenchTags    = 4
	BenchBaseMiB = 20
	BenchOwnMiB  = 1
)

// SharedBase pushes the benchmarks' registry shape: repos repositories (svc/app00, svc/app01, …)
// of tags tags each (v0, v1, …), every image one shared base layer of baseMiB plus ownMiB of its
// own, incompressible so gzip hides nothing, as images built from one base are. It returns the
// repository names.
func SharedBase(ctx context.Context, registryHost string, insecure bool, repos, tags, baseMiB, ownMiB int, opts ...remote.Option) ([]string, error) {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		out := make([]byte, n)
		for i := range out {
			out[i] = byte(rnd.Uint32())
		}
		return out
	}
	base, err := Layer(map[string][]byte{"base.bin": random(baseMiB << 20)})
	if err != nil {
		return nil, err
	}
	nameOpts := []name.Option{name.StrictValidation}
	if insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	var names []string
	for r := 0; r < repos; r++ {
		repo := fmt.Sprintf("svc/app%02d", r)
		names = append(names, repo)
		ref, err := name.NewRepository(registryHost+"/"+repo, nameOpts...)
		if err != nil {
			return nil, err
		}
		for tg := 0; tg < tags; tg++ {
			own, err := Layer(map[string][]byte{"app.bin": random(ownMiB << 20)})
			if err != nil {
				return nil, err
			}
			img, err := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), base, own)
			if err != nil {
				return nil, err
			}
			if err := Push(ctx, ref.Tag(fmt.Sprintf("v%d", tg)), img, opts...); err != nil {
				return nil, err
			}
		}
	}
	return names, nil
}
