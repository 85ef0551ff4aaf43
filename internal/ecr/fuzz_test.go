package ecr

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/regctl-dev/regctl/internal/registry"
)

// FuzzDecodeToken: no GetAuthorizationToken answer panics decodeToken; what it accepts has a user,
// a password, an expiry in the future of an unknown one and a bare host; what it refuses names the
// call and is ErrBadAnswer.
func FuzzDecodeToken(f *testing.F) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	f.Add(b64("AWS:secret"), "https://123456789012.dkr.ecr.us-east-1.amazonaws.com", int64(4102444800), true, uint8(1), false)
	f.Add(b64("AWS:secret"), "", int64(0), false, uint8(1), false)
	f.Add(b64("AWS:secret"), "127.0.0.1:5000", int64(1), true, uint8(2), false)
	f.Add(b64("nocolon"), "https://h", int64(1), true, uint8(1), false)
	f.Add("%%%", "https://h", int64(1), true, uint8(1), false)
	f.Add("", "", int64(0), false, uint8(0), false)
	f.Add(b64(":"), "https://", int64(0), false, uint8(1), true)
	f.Add(b64("a:b"), "http://u@h/x", int64(-1), true, uint8(1), false)
	now := time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, token, proxy string, expiresAt int64, hasExpiry bool, items uint8, nilToken bool) {
		out := &ecr.GetAuthorizationTokenOutput{}
		for range items % 4 {
			ad := types.AuthorizationData{AuthorizationToken: aws.String(token), ProxyEndpoint: aws.String(proxy)}
			if nilToken {
				ad.AuthorizationToken = nil
			}
			if hasExpiry {
				ad.ExpiresAt = aws.Time(time.Unix(expiresAt%(1<<40), 0))
			}
			out.AuthorizationData = append(out.AuthorizationData, ad)
		}
		tok, err := decodeToken(out, now)
		if err != nil {
			if !errors.Is(err, registry.ErrBadAnswer) || !strings.Contains(err.Error(), "ecr GetAuthorizationToken") {
				t.Fatalf("refusal does not name the call or is not ErrBadAnswer: %v", err)
			}
			return
		}
		if tok.user == "" || tok.password == "" || strings.Contains(tok.user, ":") {
			t.Fatalf("credentials %q:%q from %q", tok.user, tok.password, token)
		}
		if !hasExpiry && !tok.expires.Equal(now.Add(tokenLifetimeUnknown)) {
			t.Fatalf("no expiresAt: expires %v", tok.expires)
		}
		if (proxy == "") != (tok.host == "") || strings.ContainsAny(tok.host, "/@ ") {
			t.Fatalf("host %q from proxyEndpoint %q", tok.host, proxy)
		}
	})
}

func TestDecodeTokenOfNoAnswer(t *testing.T) {
	if _, err := decodeToken(nil, time.Now()); !errors.Is(err, registry.ErrBadAnswer) || !strings.Contains(err.Error(), "no authorizationData") {
		t.Errorf("nil answer: %v", err)
	}
}
