//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/wapr-dev/wapr/builtin/backendtest"
)

// TestRunFileTwoApps runs testdata/runfile, a run file as the Dapr
// quickstarts write them, end to end: two Go apps started with `go run`,
// each behind its own sidecar, that invoke each other (alpha calls beta's
// /hello, which calls alpha's /whoami back) and publish and subscribe
// through a Redis broker (beta publishes, alpha receives). SIGTERM to wapr
// then stops both apps and both sidecars. A copy runs, with free app ports
// and a topic of its own.
func TestRunFileTwoApps(t *testing.T) {
	backendtest.Require(t, "Redis", "127.0.0.1:6379", "docker run -d -p 6379:6379 redis:7")
	dir := t.TempDir()
	copyTree(t, filepath.Join("testdata", "runfile"), dir)
	topic := fmt.Sprintf("wapr-runfile-%d", time.Now().UnixNano())
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() {
		rdb.Del(context.Background(), topic)
		rdb.Close()
	})
	editFile(t, filepath.Join(dir, "dapr.yaml"), strings.NewReplacer(
		"appPort: 6101", "appPort: "+strconv.Itoa(freePort(t)),
		"appPort: 6102", "appPort: "+strconv.Itoa(freePort(t)),
		"TOPIC: greetings", "TOPIC: "+topic,
	))

	w := startWaprRun(t, dir, nil, "run", "-f", ".", "--wasm-cache-dir", "-", "--hot-reload=false")
	// Two `go run` builds first.
	w.stdout.wait(t, `^== APP - alpha == beta answered: hello alpha, I am beta$`, 3*time.Minute)
	w.stdout.wait(t, `^== APP - beta == greeted alpha$`, time.Second)
	w.stdout.wait(t, `^== APP - alpha == received \{"from":"beta","to":"alpha"\}$`, 30*time.Second)

	w.cmd.Process.Signal(syscall.SIGTERM)
	if code := w.exit(t, 30*time.Second); code != 0 {
		t.Fatalf("wapr exited with %d", code)
	}
	out := w.stdout.String()
	for _, want := range []string{
		"== APP - alpha == alpha stopping (terminated)\n",
		"== APP - beta == beta stopping (terminated)\n",
		"== WAPR - alpha == wapr stopped\n",
		"== WAPR - beta == wapr stopped\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// By default the app's output also goes to a file, the sidecar's only
	// there, under the app's .dapr/logs, as the dapr CLI writes them.
	for _, tc := range []struct{ glob, want string }{
		{"alpha/.dapr/logs/alpha_app_*.log", "beta answered: hello alpha"},
		{"alpha/.dapr/logs/alpha_wapr_*.log", "Dapr HTTP API listening on"},
		{"beta/.dapr/logs/beta_wapr_*.log", "Dapr HTTP API listening on"},
	} {
		files, _ := filepath.Glob(filepath.Join(dir, tc.glob))
		if len(files) != 1 {
			t.Errorf("%s: %d files", tc.glob, len(files))
			continue
		}
		if b, _ := os.ReadFile(files[0]); !strings.Contains(string(b), tc.want) {
			t.Errorf("%s lacks %q", files[0], tc.want)
		}
	}
}

// TestRunFileAppExit: when the only app exits, its sidecar stops and
// `wapr run -f` exits with the app's code; fields wapr does not use are
// named once; the run file's env reaches the app, with the sidecar's
// address.
func TestRunFileAppExit(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "solo"), 0o755)
	argv, _ := helperApp("env")
	writeFile(t, filepath.Join(dir, "run.yaml"), `version: 1
common:
  env:
    WAPR_TEST_APP: env
  containerImage: ghcr.io/x/y
apps:
  - appDirPath: ./solo
    env:
      WAPR_TEST_EXIT: 3
    appLogDestination: console
    containerImage: ghcr.io/x/z
    command: `+flowList(argv)+"\n")

	w := startWaprRun(t, dir, nil, "run", "--run-file", "run.yaml", "--wasm-cache-dir", "-", "--config", staticConfig(t))
	if code := w.exit(t, 30*time.Second); code != 3 {
		t.Fatalf("wapr exited with %d, want the app's 3", code)
	}
	out := w.stdout.String()
	port := regexp.MustCompile(`(?m)^== WAPR - solo == Dapr HTTP API listening on http://\S+:(\d+) `).FindStringSubmatch(out)
	if port == nil {
		t.Fatalf("the sidecar's address is not on the console")
	}
	for _, want := range []string{
		"== APP - solo == APP_ID=solo\n",
		"== APP - solo == DAPR_HTTP_PORT=" + port[1] + "\n",
		"== APP - solo == metadata: 200 \"id\":\"solo\"\n",
		"== WAPR - solo == wapr stopped\n",
		"== WAPR - solo == exited with code 3\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if !strings.Contains(w.stderr.String(), "== APP - solo == a line to stderr\n") {
		t.Errorf("stderr lacks the app's line")
	}
	if n := strings.Count(w.stderr.String(), "not used by wapr: containerImage (solo)\n"); n != 1 {
		t.Errorf("containerImage reported %d times, want once", n)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "solo", ".dapr", "logs", "solo_app_*")); len(files) != 0 {
		t.Errorf("appLogDestination: console wrote %s", files)
	}
}

// flowList is args as a YAML flow list.
func flowList(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// TestRunFileParse reads run files as the dapr CLI documents them.
func TestRunFileParse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		dirs  []string // folders to create, relative to the run file
		files []string // empty files to create
		yaml  string
		check func(t *testing.T, dir string, rf *runFile)
		errs  []string // each in the error
	}{{
		name: "quickstart",
		dirs: []string{"components", "order-processor", "checkout"},
		yaml: `version: 1
common:
  resourcesPath: ./components/
  env:
    DEBUG: true
apps:
  - appID: order-processor-sdk
    appDirPath: ./order-processor/
    appPort: 6001
    command: ["uvicorn", "app:app"]
  - appID: checkout-sdk
    appDirPath: ./checkout/
    command: ["python3", "app.py"]
`,
		check: func(t *testing.T, dir string, rf *runFile) {
			if len(rf.Apps) != 2 {
				t.Fatalf("%d apps", len(rf.Apps))
			}
			a, b := rf.Apps[0], rf.Apps[1]
			want(t, "ID", a.ID+" "+b.ID, "order-processor-sdk checkout-sdk")
			want(t, "Dir", a.Dir, filepath.Join(dir, "order-processor"))
			want(t, "Command", strings.Join(a.Command, " "), "uvicorn app:app")
			want(t, "Env", strings.Join(b.Env, " "), "DEBUG=true")
			want(t, "ResourcesPaths", strings.Join(b.ResourcesPaths, " "), filepath.Join(dir, "components"))
			want(t, "Flags", strings.Join(a.Flags, " "), "--app-port=6001")
			want(t, "Flags", strings.Join(b.Flags, " "), "")
			want(t, "logs", a.AppLog+" "+a.WaprLog, "fileAndConsole file")
			want(t, "ConfigFile", a.ConfigFile, "")
			want(t, "Ignored", strings.Join(rf.Ignored, "; "), "")
		},
	}, {
		name: "the app's fields win over common's",
		dirs: []string{"shared", "web", "web/mine", "web/theirs"},
		yaml: `version: 1
common:
  resourcesPaths: ./shared
  logLevel: debug
  appProtocol: grpc
  daprdLogDestination: console
  env:
    A: common
    B: common
apps:
  - appId: web
    appDirPath: web
    resourcesPaths: ./mine,theirs
    logLevel: warn
    daprHTTPMaxRequestSize: 8
    apiListenAddresses: 127.0.0.1
    daprInternalGRPCPort: 50123
    appLogDestination: FILE
    env:
      - B: app
    command: ./web --port 3000
`,
		check: func(t *testing.T, dir string, rf *runFile) {
			a := rf.Apps[0]
			want(t, "ResourcesPaths", strings.Join(a.ResourcesPaths, " "), filepath.Join(dir, "web/mine")+" "+filepath.Join(dir, "web/theirs"))
			want(t, "Flags", strings.Join(a.Flags, " "),
				"--dapr-listen-addresses=127.0.0.1 --app-protocol=grpc --dapr-http-max-request-size=8 --log-level=warn")
			want(t, "Env", strings.Join(a.Env, " "), "A=common B=common B=app") // the last B wins
			want(t, "Command", strings.Join(a.Command, "|"), "./web|--port|3000")
			want(t, "InternalPort", strconv.Itoa(a.InternalPort), "50123")
			want(t, "logs", a.AppLog+" "+a.WaprLog, "file console")
		},
	}, {
		name:  "the CLI's conventions: .dapr/resources and .dapr/config.yaml, an appID from the folder",
		dirs:  []string{"svc/.dapr/resources"},
		files: []string{"svc/.dapr/config.yaml"},
		yaml:  "version: 1\napps:\n  - appDirPath: svc\n",
		check: func(t *testing.T, dir string, rf *runFile) {
			a := rf.Apps[0]
			want(t, "ID", a.ID, "svc")
			want(t, "ResourcesPaths", strings.Join(a.ResourcesPaths, " "), filepath.Join(dir, "svc/.dapr/resources"))
			want(t, "ConfigFile", a.ConfigFile, filepath.Join(dir, "svc/.dapr/config.yaml"))
			want(t, "Command", strings.Join(a.Command, " "), "")
		},
	}, {
		name:  "configFilePath relative to the app's folder; a missing one is a note",
		dirs:  []string{"a", "b"},
		files: []string{"a/conf.yaml"},
		yaml:  "version: 1\napps:\n  - appDirPath: a\n    configFilePath: conf.yaml\n  - appDirPath: b\n    configFilePath: nope.yaml\n",
		check: func(t *testing.T, dir string, rf *runFile) {
			want(t, "ConfigFile", rf.Apps[0].ConfigFile, filepath.Join(dir, "a/conf.yaml"))
			want(t, "ConfigFile", rf.Apps[1].ConfigFile, "")
			want(t, "Notes", strings.Join(rf.Notes, "; "), "b: configFilePath "+filepath.Join(dir, "b/nope.yaml")+" does not exist; not used")
		},
	}, {
		name: "fields wapr has no use for are named once each",
		dirs: []string{"a", "b"},
		yaml: `version: 1
kubernetesNamespace: x
common:
  createService: true
apps:
  - appDirPath: a
    containerImage: i
  - appDirPath: b
    containerImage: j
`,
		check: func(t *testing.T, dir string, rf *runFile) {
			want(t, "Ignored", strings.Join(rf.Ignored, "; "),
				"containerImage (a, b); createService (a, b); kubernetesNamespace (top level)")
		},
	}, {
		name: "every problem at once",
		dirs: []string{"a"},
		yaml: `version: 2
apps:
  - appID: one
  - appID: a
    appDirPath: a
    appPort: eighty
    appLogDestination: printer
  - appDirPath: a
    command: {run: x}
  - appDirPath: missing
`,
		errs: []string{
			`version must be 1, not "2"`,
			"apps[0]: appDirPath is required",
			`a: appPort: invalid value "eighty"`,
			`a: appLogDestination must be console, file or fileAndConsole, not "printer"`,
			"a: two apps have this appID",
			"a: command: must be a list of arguments",
			"apps[3]: appDirPath " + "%DIR%/missing is not a folder",
		},
	}, {
		name: "no apps",
		yaml: "version: 1\n",
		errs: []string{"apps must list at least one app"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range tc.dirs {
				os.MkdirAll(filepath.Join(dir, d), 0o755)
			}
			for _, f := range tc.files {
				writeFile(t, filepath.Join(dir, f), "")
			}
			path := filepath.Join(dir, "dapr.yaml")
			writeFile(t, path, tc.yaml)
			probe, err := parseRunFlags(nil, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			rf, err := parseRunFile(path, probe.flags)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatal("no error")
				}
				for _, e := range tc.errs {
					if e = strings.ReplaceAll(e, "%DIR%", dir); !strings.Contains(err.Error(), e) {
						t.Errorf("the error lacks %q:\n%v", e, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, dir, rf)
		})
	}
}

// TestRunFileConfig: an app's sidecar resolves the run file's apps with a
// static table unless its Configuration names a resolver; the rest of its
// Configuration is kept.
func TestRunFileConfig(t *testing.T) {
	table := map[string]any{"a": "127.0.0.1:5001", "b": "127.0.0.1:5002"}
	dir := t.TempDir()
	own := filepath.Join(dir, "own.yaml")
	writeFile(t, own, "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n  nameResolution:\n    component: mdns\n")
	scoped := filepath.Join(dir, "scoped.yaml")
	writeFile(t, scoped, "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n  secrets:\n    scopes:\n      - storeName: s\n        defaultAccess: deny\n")

	if got, err := runFileConfig(own, "a", table, dir); err != nil || got != own {
		t.Errorf("a Configuration naming a resolver: %q, %v; want it unchanged", got, err)
	}
	for _, file := range []string{"", scoped} {
		got, err := runFileConfig(file, "a", table, dir)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Kind string
			Spec struct {
				NameResolution struct {
					Component     string
					Configuration struct{ Apps map[string]string }
				} `yaml:"nameResolution"`
				Secrets struct{ Scopes []map[string]string }
			}
		}
		b, _ := os.ReadFile(got)
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		nr := doc.Spec.NameResolution
		if doc.Kind != "Configuration" || nr.Component != "static" || nr.Configuration.Apps["b"] != "127.0.0.1:5002" {
			t.Errorf("from %q: %s", file, b)
		}
		if file == scoped && (len(doc.Spec.Secrets.Scopes) != 1 || doc.Spec.Secrets.Scopes[0]["defaultAccess"] != "deny") {
			t.Errorf("the secret scopes are lost: %s", b)
		}
	}
}

// TestRunFileCommandLine: flags given with -f reach every app, paths made
// absolute; those each app has for itself are refused; -f takes a folder
// (its dapr.yaml) or a file.
func TestRunFileCommandLine(t *testing.T) {
	wd, _ := os.Getwd()
	f, err := parseRunFlags([]string{"-f", "x", "--log-level", "debug", "--resources-path", "comp", "--wasm-cache-dir", "-"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	common, err := runFileCommonFlags(f)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "common flags", strings.Join(common, " "), "--log-level=debug --resources-path="+filepath.Join(wd, "comp")+" --wasm-cache-dir=-")
	f, _ = parseRunFlags([]string{"--run-file", "x", "--app-port", "3", "--dapr-http-port", "3500", "--metrics-port", "9091"}, io.Discard)
	if _, err := runFileCommonFlags(f); err == nil || !strings.Contains(err.Error(), "--app-port is each app's own") ||
		!strings.Contains(err.Error(), "--dapr-http-port is each app's own") || !strings.Contains(err.Error(), "--metrics-port is each app's own") {
		t.Errorf("per-app flags: %v", err)
	}
	if code := run([]string{"run", "-f", "x", "--", "node"}); code != 2 {
		t.Errorf("-f with a command: exit %d, want 2", code)
	}

	dir := t.TempDir()
	if _, err := runFilePath(dir); err == nil {
		t.Errorf("a folder without dapr.yaml is accepted")
	}
	writeFile(t, filepath.Join(dir, "dapr.yaml"), "version: 1\n")
	if p, err := runFilePath(dir); err != nil || p != filepath.Join(dir, "dapr.yaml") {
		t.Errorf("a folder: %q, %v", p, err)
	}

	app := runFileApp{ID: "a", Dir: dir, InternalPort: 5001, ResourcesPaths: []string{"/r"}, Flags: []string{"--app-port=3"}, Command: []string{"go", "run", "."}}
	args := runFileArgs("/bin/wapr", []string{"--log-level=debug"}, app, "/c.yaml")
	want(t, "args", strings.Join(args, " "), "/bin/wapr run --log-level=debug --app-id=a --dapr-http-port=0 --dapr-grpc-port=0 "+
		"--dapr-internal-grpc-port=5001 --metrics-port=0 --profile-port=0 --config=/c.yaml --resources-path=/r --app-port=3 -- go run .")
	parsed, err := parseRunFlags(args[2:], io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.appID != "a" || parsed.appPort != 3 || !slices.Equal(parsed.appCommand, app.Command) {
		t.Errorf("wapr run reads the args as %+v", parsed)
	}
}

func want(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func editFile(t *testing.T, path string, r *strings.Replacer) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, r.Replace(string(b)))
}

// copyTree copies the files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
