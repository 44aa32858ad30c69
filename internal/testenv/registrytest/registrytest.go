// Package registrytest runs a real container registry in process
// (go-containerregistry's registry) and pushes images to it, for the
// preflight's image-architecture checks.
package registrytest

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Start serves a registry on loopback until the test ends and returns its
// host:port. With user set, every request needs that user and password
// (basic auth), as a private registry does.
func Start(t testing.TB, user, password string) string {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); user != "" && (!ok || u != user || p != password) {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Image is a small random linux image of arch.
func Image(t testing.TB, arch string) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// PushIndex pushes ref as a manifest list with one image per architecture.
func PushIndex(t testing.TB, ref string, archs []string, opts ...remote.Option) {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, a := range archs {
		adds = append(adds, mutate.IndexAddendum{Add: Image(t, a), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: a}}})
	}
	if err := remote.WriteIndex(parse(t, ref), mutate.AppendManifests(empty.Index, adds...), opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// PushImage pushes ref as a single-platform image.
func PushImage(t testing.TB, ref, arch string, opts ...remote.Option) {
	t.Helper()
	if err := remote.Write(parse(t, ref), Image(t, arch), opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func parse(t testing.TB, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
