package host_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// secretStoreYAML is the Dapr docs' local file secret store.
func secretStoreYAML(name, file string, extra string) string {
	return fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: %s
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - name: secretsFile
    value: %s
  - name: nestedSeparator
    value: ":"
%s`, name, file, extra)
}

func writeSecrets(t *testing.T, content string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "secrets.json")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestSecretsHTTP covers the secrets API over a local file store, a
// multi-valued one and the environment store, with every error daprd
// answers.
func TestSecretsHTTP(t *testing.T) {
	t.Setenv("WAPR_TEST_SECRET_GREETING", "hello from the environment")
	file := writeSecrets(t, `{"redisPassword":"s3cret","db":{"user":"admin","password":"pw"},"port":6379}`)
	multi := writeSecrets(t, `{"db":{"user":"admin","password":"pw"},"token":"abc"}`)
	s := startSidecar(t, hostConfig{yaml: map[string]string{
		"file.yaml": secretStoreYAML("localsecretstore", file, ""),
		"multi.yaml": secretStoreYAML("multistore", multi, `  - name: multiValued
    value: "true"
`),
		"env.yaml": `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: envstore
spec:
  type: secretstores.local.env
  version: v1
  metadata:
  - name: prefix
    value: WAPR_TEST_SECRET_
`,
	}})
	s.transcript(t, "secrets", []step{
		{method: "GET", path: "/v1.0/secrets/localsecretstore/redisPassword"},
		{method: "GET", path: "/v1.0/secrets/localsecretstore/db:password"},
		{method: "GET", path: "/v1.0/secrets/localsecretstore/port"},
		{method: "GET", path: "/v1.0/secrets/localsecretstore/bulk"},
		{method: "GET", path: "/v1.0/secrets/multistore/db"},
		{method: "GET", path: "/v1.0/secrets/multistore/bulk"},
		{method: "GET", path: "/v1.0/secrets/envstore/GREETING"},
		{method: "GET", path: "/v1.0/secrets/localsecretstore/nosuchsecret"},
		{method: "GET", path: "/v1.0/secrets/nosuchstore/redisPassword"},
		{method: "GET", path: "/v1.0/secrets/nosuchstore/bulk"},
		{method: "POST", path: "/v1.0/secrets/localsecretstore/redisPassword"},
	})

	none := startSidecar(t, hostConfig{})
	none.transcript(t, "secrets-none", []step{
		{method: "GET", path: "/v1.0/secrets/localsecretstore/redisPassword"},
	})
}

// TestSecretScopes checks each rule of spec.secrets.scopes: an allow list
// decides alone, a deny list refuses what it names, defaultAccess decides the
// rest, and a store without scopes allows everything. Bulk answers leave
// refused secrets out.
func TestSecretScopes(t *testing.T) {
	file := writeSecrets(t, `{"a":"1","b":"2","c":"3"}`)
	yaml := map[string]string{}
	for _, name := range []string{"allowlist", "denylist", "denyall", "allowall", "unscoped"} {
		yaml[name+".yaml"] = secretStoreYAML(name, file, "")
	}
	s := startSidecar(t, hostConfig{yaml: yaml, config: `apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: appconfig
spec:
  secrets:
    scopes:
    - storeName: allowlist
      defaultAccess: allow
      allowedSecrets: ["a"]
      deniedSecrets: ["a", "b"]
    - storeName: denylist
      deniedSecrets: ["b"]
    - storeName: denyall
      defaultAccess: deny
    - storeName: allowall
      defaultAccess: allow
`})
	tests := []struct {
		store   string
		allowed string // of a, b, c
	}{
		{"allowlist", "a"},
		{"denylist", "ac"},
		{"denyall", ""},
		{"allowall", "abc"},
		{"unscoped", "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.store, func(t *testing.T) {
			for _, name := range []string{"a", "b", "c"} {
				res, body := s.do(t, step{method: "GET", path: "/v1.0/secrets/" + tt.store + "/" + name})
				if strings.Contains(tt.allowed, name) {
					if res.StatusCode != 200 {
						t.Errorf("%s: %d %s, want 200", name, res.StatusCode, body)
					}
					continue
				}
				msg, _ := json.Marshal(fmt.Sprintf("access denied by policy to get %q from %q", name, tt.store))
				want := `{"errorCode":"ERR_PERMISSION_DENIED","message":` + string(msg) + `}`
				if res.StatusCode != 403 || string(body) != want {
					t.Errorf("%s: %d %s, want 403 %s", name, res.StatusCode, body, want)
				}
			}
			res, body := s.do(t, step{method: "GET", path: "/v1.0/secrets/" + tt.store + "/bulk"})
			var got map[string]map[string]string
			if err := json.Unmarshal(body, &got); res.StatusCode != 200 || err != nil {
				t.Fatalf("bulk: %d %s", res.StatusCode, body)
			}
			var names string
			for _, n := range []string{"a", "b", "c"} {
				if _, ok := got[n]; ok {
					names += n
				}
			}
			if names != tt.allowed || len(got) != len(tt.allowed) {
				t.Errorf("bulk returned %v, want only %q", got, tt.allowed)
			}
		})
	}
}

// TestSecretKeyRef starts a password-protected Redis and a state.redis whose
// redisPassword comes from a secret store: the store connects, the password
// shows nowhere in the metadata API, and a rotated password is read again on
// reload.
func TestSecretKeyRef(t *testing.T) {
	const password = "p4ss-from-secret-store"
	r := backendtest.StartRedis(t, "--requirepass", password)
	secrets := writeSecrets(t, `{"redis":{"password":"`+password+`"}}`)
	stateYAML := `apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  version: v1
  metadata:
  - name: redisHost
    value: ` + r.Addr + `
  - name: redisPassword
    secretKeyRef:
      name: redis:password
      key: redis:password
auth:
  secretStore: localsecretstore
`
	s := startSidecar(t, hostConfig{yaml: map[string]string{
		// Named to sort before the secret store: the order of files must
		// not matter.
		"a-statestore.yaml": stateYAML,
		"b-secrets.yaml":    secretStoreYAML("localsecretstore", secrets, ""),
	}})
	saveAndGet := func(value string) {
		t.Helper()
		res, body := s.do(t, step{method: "POST", path: "/v1.0/state/statestore", body: `[{"key":"k","value":"` + value + `"}]`})
		if res.StatusCode != 204 {
			t.Fatalf("save: %d %s", res.StatusCode, body)
		}
		res, body = s.do(t, step{method: "GET", path: "/v1.0/state/statestore/k"})
		if res.StatusCode != 200 || string(body) != `"`+value+`"` {
			t.Fatalf("get: %d %s", res.StatusCode, body)
		}
	}
	saveAndGet("v1")
	_, meta := s.do(t, step{method: "GET", path: "/v1.0/metadata"})
	if strings.Contains(string(meta), password) || !strings.Contains(string(meta), `"statestore"`) {
		t.Fatalf("metadata shows the password or lacks the store: %s", meta)
	}

	// Rotate: Redis takes a new password, the secret file follows, and a
	// reload re-reads the secret and restarts the store with it.
	const rotated = "rotated-p4ss"
	conn := redisClient(t, r.Addr, password)
	if err := conn.ConfigSet(t.Context(), "requirepass", rotated).Err(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secrets, []byte(`{"redis":{"password":"`+rotated+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s.h.Reload(t.Context())
	saveAndGet("v2")
	_, meta = s.do(t, step{method: "GET", path: "/v1.0/metadata"})
	if strings.Contains(string(meta), rotated) || strings.Contains(string(meta), "failedComponents") {
		t.Fatalf("after rotation: %s", meta)
	}
}

// TestSecretKeyRefFailures shows what an operator sees when a reference
// cannot be resolved: the component does not load, the reason names the
// item, secret and store, and no secret value appears.
func TestSecretKeyRefFailures(t *testing.T) {
	secrets := writeSecrets(t, `{"present":"do-not-show-me"}`)
	comp := func(name, store, secret, key string) string {
		return fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: %s
spec:
  type: state.in-memory
  version: v1
  metadata:
  - name: something
    secretKeyRef:
      name: %s
      key: %s
auth:
  secretStore: %s
`, name, secret, key, store)
	}
	s := startSidecar(t, hostConfig{yaml: map[string]string{
		"secrets.yaml":  secretStoreYAML("localsecretstore", secrets, ""),
		"ok.yaml":       comp("ok", "localsecretstore", "present", "present"),
		"nostore.yaml":  comp("nostore", "nosuchstore", "present", "present"),
		"nosecret.yaml": comp("nosecret", "localsecretstore", "absent", "absent"),
		"nokey.yaml":    comp("nokey", "localsecretstore", "present", "otherkey"),
	}})
	_, body := s.do(t, step{method: "GET", path: "/v1.0/metadata"})
	if strings.Contains(string(body), "do-not-show-me") {
		t.Fatalf("a secret value shows in the metadata API: %s", body)
	}
	var md struct {
		Components []struct{ Name string }
		Wapr       struct {
			FailedComponents []struct{ Name, Error string }
		}
	}
	if err := json.Unmarshal(body, &md); err != nil {
		t.Fatal(err)
	}
	var loaded []string
	for _, c := range md.Components {
		loaded = append(loaded, c.Name)
	}
	if strings.Join(loaded, ",") != "localsecretstore,ok" {
		t.Errorf("loaded %v, want localsecretstore and ok", loaded)
	}
	want := map[string]string{
		"nostore":  `auth.secretStore: no secret store named "nosuchstore" is loaded`,
		"nosecret": `metadata item "something": secretKeyRef {name: absent, key: absent} in secret store localsecretstore:`,
		"nokey":    `metadata item "something": secretKeyRef {name: present, key: otherkey} in secret store localsecretstore: the secret has no key otherkey`,
	}
	for _, f := range md.Wapr.FailedComponents {
		w, ok := want[f.Name]
		if !ok || !strings.Contains(f.Error, w) {
			t.Errorf("failed component %s: %q, want it to contain %q", f.Name, f.Error, w)
		}
		delete(want, f.Name)
	}
	if len(want) > 0 {
		t.Errorf("not reported as failed: %v", want)
	}
}

// redisClient connects to addr with password; closed when the test ends.
func redisClient(t *testing.T, addr, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password})
	t.Cleanup(func() { c.Close() })
	return c
}
