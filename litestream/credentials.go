package litestream

import (
	"encoding/json"
	"log/slog"
	"os"
)

// Credentials are an S3 key pair. Every way of printing one (fmt, %#v,
// slog, JSON) shows the access key id and hides the secret.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
}

const redacted = "[REDACTED]"

func (c Credentials) redact() map[string]string {
	s := ""
	if c.SecretAccessKey != "" {
		s = redacted
	}
	return map[string]string{"access_key_id": c.AccessKeyID, "secret_access_key": s}
}

func (c Credentials) String() string {
	return "access_key_id=" + c.AccessKeyID + " secret_access_key=" + c.redact()["secret_access_key"]
}

// GoString is used by %#v.
func (c Credentials) GoString() string {
	return `litestream.Credentials{AccessKeyID:"` + c.AccessKeyID + `", SecretAccessKey:"` + c.redact()["secret_access_key"] + `"}`
}

// LogValue implements slog.LogValuer.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("access_key_id", c.AccessKeyID), slog.String("secret_access_key", c.redact()["secret_access_key"]))
}

// MarshalJSON never emits the secret.
func (c Credentials) MarshalJSON() ([]byte, error) { return json.Marshal(c.redact()) }

// CredentialsFromEnv reads LITESTREAM_ACCESS_KEY_ID and
// LITESTREAM_SECRET_ACCESS_KEY, or else AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY (the variables the litestream CLI reads). ok is
// false when neither pair is complete.
func CredentialsFromEnv() (c Credentials, ok bool) {
	for _, p := range [][2]string{
		{"LITESTREAM_ACCESS_KEY_ID", "LITESTREAM_SECRET_ACCESS_KEY"},
		{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
	} {
		id, secret := os.Getenv(p[0]), os.Getenv(p[1])
		if id != "" && secret != "" {
			return Credentials{AccessKeyID: id, SecretAccessKey: secret}, true
		}
	}
	return Credentials{}, false
}
