package admission

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/regctl-dev/regctl/internal/exitcode"
	"github.com/regctl-dev/regctl/internal/sign"
)

// RegistryChecker verifies through the registries themselves, as regctl verify does.
type RegistryChecker struct {
	// Remote gives the registry options (credentials, TLS) for a host: a registry of regctl's
	// config serving it, else anonymous.
	Remote func(ctx context.Context, host string) ([]remote.Option, error)

	mu        sync.Mutex
	verifiers map[string]signature.Verifier
}

// LoadKeys loads every rule's keys once, before serving: a key that cannot be read stops the
// start, not a review.
func (c *RegistryChecker) LoadKeys(ctx context.Context, p Policy) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.verifiers == nil {
		c.verifiers = map[string]signature.Verifier{}
	}
	for i, r := range p.Rules {
		for j, k := range r.Keys {
			if _, ok := c.verifiers[k]; ok {
				continue
			}
			v, err := sign.LoadVerifier(ctx, k)
			if err != nil {
				return fmt.Errorf("rules[%d].keys[%d]: %w", i, j, err)
			}
			c.verifiers[k] = v
		}
	}
	return nil
}

// Resolve is a tag's current digest (a HEAD), or the digest the reference pins.
func (c *RegistryChecker) Resolve(ctx context.Context, ref name.Reference) (name.Digest, error) {
	if d, ok := ref.(name.Digest); ok {
		return d, nil
	}
	opts, err := c.Remote(ctx, ref.Context().RegistryStr())
	if err != nil {
		return name.Digest{}, err
	}
	desc, err := remote.Head(ref, append(opts, remote.WithContext(ctx))...)
	if err != nil {
		return name.Digest{}, err
	}
	return ref.Context().Digest(desc.Digest.String()), nil
}

// Verify checks the digest's signatures with the key.
func (c *RegistryChecker) Verify(ctx context.Context, d name.Digest, key string, annotations map[string]string) error {
	c.mu.Lock()
	v := c.verifiers[key]
	c.mu.Unlock()
	if v == nil {
		return fmt.Errorf("key %s was not loaded", key)
	}
	opts, err := c.Remote(ctx, d.Context().RegistryStr())
	if err != nil {
		return err
	}
	_, err = sign.Verify(ctx, opts, d, v, sign.VerifyOptions{Annotations: annotations})
	if errors.Is(err, exitcode.ErrViolation) {
		return fmt.Errorf("%w: %v", ErrUnsigned, err)
	}
	return err
}
