package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry"
)

// vaultKV answers a KV v2 read as Vault does: the keys under data.data,
// for the right token only.
func vaultKV(t *testing.T, token string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("X-Vault-Token") != token {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"errors":["permission denied"]}`)
			return
		}
		if r.Method != http.MethodGet || r.URL.Path != "/v1/nomad/data/default/overseerr" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[]}`)
			return
		}
		fmt.Fprint(w, `{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,
		  "data":{"data":{"MINIO_ACCESS_KEY":"AKIAVAULT","MINIO_SECRET_KEY":"vault-secret-canary"},
		  "metadata":{"created_time":"2026-11-27T00:00:00Z","custom_metadata":null,"deletion_time":"","destroyed":false,"version":3}},
		  "wrap_info":null,"warnings":null,"auth":null}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCredentialsFromTheSpecsVaultSecret(t *testing.T) {
	svc := &ferry.Service{Secrets: ferry.Secrets{Provider: ferry.SecretsVault, Path: "nomad/default/overseerr", AccessKeyKey: "MINIO_ACCESS_KEY", SecretKeyKey: "MINIO_SECRET_KEY"}}
	for _, k := range []string{"LITESTREAM_ACCESS_KEY_ID", "LITESTREAM_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, "")
	}
	srv := vaultKV(t, "s.good-token")
	t.Setenv("VAULT_ADDR", srv.URL)

	t.Setenv("VAULT_TOKEN", "s.good-token")
	c, err := credentials(context.Background(), svc, nil)
	if err != nil || c.AccessKeyID != "AKIAVAULT" || c.SecretAccessKey != "vault-secret-canary" {
		t.Fatalf("credentials = %v, %v; want the Vault secret's keys", c, err)
	}

	t.Setenv("VAULT_TOKEN", "s.bad-token")
	_, err = credentials(context.Background(), svc, nil)
	if err == nil || !strings.Contains(err.Error(), "nomad/default/overseerr") || strings.Contains(err.Error(), "s.bad-token") {
		t.Fatalf("with a bad token: %v; want an error naming the secret and not the token", err)
	}

	// The environment wins, and without any source the error says what to set.
	t.Setenv("LITESTREAM_ACCESS_KEY_ID", "AKIAENV")
	t.Setenv("LITESTREAM_SECRET_ACCESS_KEY", "env-secret")
	if c, err := credentials(context.Background(), svc, nil); err != nil || c.AccessKeyID != "AKIAENV" {
		t.Fatalf("credentials = %v, %v; want the environment's", c, err)
	}
	t.Setenv("LITESTREAM_ACCESS_KEY_ID", "")
	t.Setenv("VAULT_ADDR", "")
	if _, err := credentials(context.Background(), svc, nil); err != errNoCredentials {
		t.Fatalf("no source: %v", err)
	}
}
