package main

// `wapr run -f FILE` reads the dapr CLI's multi-app run file (`dapr run -f`,
// docs/run-files.md) and runs every app it names with a sidecar of its own:
// one `wapr run [flags] -- command…` process per app, in the app's folder,
// started from this binary. The apps find each other through a static
// name-resolution table of their sidecars' addresses unless an app's
// Configuration names a resolver, so a run file never announces anything on
// the machine's network. The run ends when every app has stopped; SIGINT
// and SIGTERM reach every sidecar, and each passes it to its app.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// runFile is a multi-app run file, read: each app with the common section
// applied and every path absolute.
type runFile struct {
	Path string
	Apps []runFileApp
	// Ignored names each field wapr has no use for once, with where it
	// appeared: "containerImage (alpha, beta)".
	Ignored []string
	// Notes are warnings that do not stop the run.
	Notes []string
}

// runFileApp is one app of a run file.
type runFileApp struct {
	ID  string
	Dir string // appDirPath: where the app and its sidecar run
	// Command is the app's command; empty runs the sidecar alone.
	Command        []string
	Env            []string // KEY=VALUE: common's, then the app's own
	ResourcesPaths []string
	ConfigFile     string // "" for none
	InternalPort   int    // daprInternalGRPCPort; 0: a free port
	// Flags are the `wapr run` flags the other fields set, as --name=value.
	Flags []string
	// AppLog and WaprLog are where the app's and the sidecar's output go:
	// "console", "file" or "fileAndConsole" (appLogDestination,
	// daprdLogDestination).
	AppLog, WaprLog string
}

// Fields that are not flags, read by parseRunFile itself (lower-cased).
var runFileOwnFields = []string{
	"appid", "appdirpath", "command", "env", "resourcespath", "resourcespaths",
	"configfilepath", "applogdestination", "daprdlogdestination", "daprinternalgrpcport",
}

// runFileFlagAliases maps the fields whose flag is not the field's own name
// in kebab case to it.
var runFileFlagAliases = map[string]string{
	"apilistenaddresses": "dapr-listen-addresses",
}

// notFromRunFile are the flags a run file's field never sets: the command's
// own, and those the parent sets for every app.
var notFromRunFile = []string{
	"run-file", "f", "version", "build-info", "wait", "help",
	"app-id", "config", "resources-path", "components-path", "dapr-internal-grpc-port",
}

// parseRunFile reads the run file at path. flags is a `wapr run` flag set:
// a field names one of its flags when the flag's name without dashes is
// the field's, ignoring case (daprHTTPMaxRequestSize sets
// --dapr-http-max-request-size), and its value is checked there. Every
// problem is reported, at once.
func parseRunFile(path string, flags *flag.FlagSet) (*runFile, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rf := &runFile{Path: path}
	var errs []error
	problem := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	ignored := map[string][]string{}
	ignore := func(name, where string) { ignored[name] = append(ignored[name], where) }
	base := filepath.Dir(path)

	byFlag := map[string]string{} // flag name without dashes → flag name
	flags.VisitAll(func(fl *flag.Flag) {
		if !slices.Contains(notFromRunFile, fl.Name) {
			byFlag[strings.ReplaceAll(fl.Name, "-", "")] = fl.Name
		}
	})
	for field, name := range runFileFlagAliases {
		byFlag[field] = name
	}

	top := fieldsOf(doc)
	for key, fl := range top {
		if key != "version" && key != "common" && key != "apps" {
			ignore(fl.name, "top level")
		}
	}
	if v, _ := scalar(top["version"].value); v != "1" {
		problem("version must be 1, not %q", v)
	}
	common, ok := top["common"].value.(map[string]any)
	if !ok && top["common"].value != nil {
		problem("common must be a mapping")
	}
	commonFields := fieldsOf(common)
	for _, key := range []string{"appid", "appdirpath", "command"} {
		if fl, ok := commonFields[key]; ok {
			ignore(fl.name, "common")
		}
	}
	commonEnv, err := envOf(commonFields["env"].value)
	if err != nil {
		problem("common: env: %v", err)
	}
	commonResources, err := pathsOf(commonFields, base)
	if err != nil {
		problem("common: %v", err)
	}
	commonConfig := ""
	if fl, ok := commonFields["configfilepath"]; ok {
		s, _ := scalar(fl.value)
		commonConfig = resolvePath(base, s)
	}

	apps, ok := top["apps"].value.([]any)
	if !ok || len(apps) == 0 {
		problem("apps must list at least one app")
	}
	seen := map[string]bool{}
	for i, item := range apps {
		m, ok := item.(map[string]any)
		if !ok {
			problem("apps[%d] must be a mapping", i)
			continue
		}
		fields := fieldsOf(m)
		where := fmt.Sprintf("apps[%d]", i)
		dirPath, _ := scalar(fields["appdirpath"].value)
		if dirPath == "" {
			problem("%s: appDirPath is required", where)
			continue
		}
		app := runFileApp{Dir: resolvePath(base, dirPath)}
		if st, err := os.Stat(app.Dir); err != nil || !st.IsDir() {
			problem("%s: appDirPath %s is not a folder", where, app.Dir)
		}
		app.ID, _ = scalar(fields["appid"].value)
		if app.ID == "" {
			app.ID = filepath.Base(app.Dir)
		}
		where = app.ID
		if seen[app.ID] {
			problem("%s: two apps have this appID", where)
		}
		seen[app.ID] = true

		if app.Command, err = commandOf(fields["command"].value); err != nil {
			problem("%s: command: %v", where, err)
		}
		env, err := envOf(fields["env"].value)
		if err != nil {
			problem("%s: env: %v", where, err)
		}
		app.Env = append(slices.Clone(commonEnv), env...)

		own, err := pathsOf(fields, app.Dir)
		switch {
		case err != nil:
			problem("%s: %v", where, err)
		case len(own) > 0:
			app.ResourcesPaths = own
		case len(commonResources) > 0:
			app.ResourcesPaths = commonResources
		default:
			// The dapr CLI's convention: the app folder's .dapr/resources.
			if st, err := os.Stat(filepath.Join(app.Dir, ".dapr", "resources")); err == nil && st.IsDir() {
				app.ResourcesPaths = []string{filepath.Join(app.Dir, ".dapr", "resources")}
			}
		}

		explicit := commonConfig
		if fl, ok := fields["configfilepath"]; ok {
			s, _ := scalar(fl.value)
			explicit = resolvePath(app.Dir, s)
		}
		conventional := filepath.Join(app.Dir, ".dapr", "config.yaml")
		switch {
		case explicit != "" && fileExists(explicit):
			app.ConfigFile = explicit
		case explicit != "":
			// As the dapr CLI: a configuration file that is not there is
			// ignored, but not silently.
			rf.Notes = append(rf.Notes, fmt.Sprintf("%s: configFilePath %s does not exist; not used", where, explicit))
		case fileExists(conventional):
			app.ConfigFile = conventional
		}

		merged := map[string]field{}
		for key, fl := range commonFields {
			merged[key] = fl
		}
		for key, fl := range fields {
			merged[key] = fl
		}
		app.AppLog, app.WaprLog = "fileAndConsole", "file"
		for _, d := range []struct {
			key  string
			dest *string
		}{{"applogdestination", &app.AppLog}, {"daprdlogdestination", &app.WaprLog}} {
			if fl, ok := merged[d.key]; ok {
				s, _ := scalar(fl.value)
				if *d.dest = logDestination(s); *d.dest == "" {
					problem("%s: %s must be console, file or fileAndConsole, not %q", where, fl.name, s)
				}
			}
		}
		if fl, ok := merged["daprinternalgrpcport"]; ok {
			s, _ := scalar(fl.value)
			if app.InternalPort, err = strconv.Atoi(s); err != nil || app.InternalPort < 0 || app.InternalPort > 65535 {
				problem("%s: %s must be a port, not %q", where, fl.name, s)
			}
		}

		keys := make([]string, 0, len(merged))
		for key := range merged {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, key := range keys {
			fl := merged[key]
			if slices.Contains(runFileOwnFields, key) {
				continue
			}
			name, ok := byFlag[key]
			if !ok {
				ignore(fl.name, where)
				continue
			}
			v, ok := scalar(fl.value)
			if !ok {
				problem("%s: %s must be a value or a list of values", where, fl.name)
				continue
			}
			if err := flags.Set(name, v); err != nil {
				problem("%s: %s: invalid value %q: %v", where, fl.name, v, err)
				continue
			}
			app.Flags = append(app.Flags, "--"+name+"="+v)
		}
		rf.Apps = append(rf.Apps, app)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("run file %s:\n  %w", path, joinIndented(errs))
	}
	names := make([]string, 0, len(ignored))
	for name := range ignored {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		rf.Ignored = append(rf.Ignored, name+" ("+strings.Join(slices.Compact(ignored[name]), ", ")+")")
	}
	return rf, nil
}

// joinIndented joins errs one a line, indented under the first line.
func joinIndented(errs []error) error {
	lines := make([]string, len(errs))
	for i, err := range errs {
		lines[i] = err.Error()
	}
	return errors.New(strings.Join(lines, "\n  "))
}

// field is a run-file field as written: its name and its decoded YAML value.
type field struct {
	name  string
	value any
}

// fieldsOf indexes m by lower-cased key: field names are matched ignoring
// case (appID, appId).
func fieldsOf(m map[string]any) map[string]field {
	out := make(map[string]field, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = field{k, v}
	}
	return out
}

// scalar is v as a flag value: a string, number or boolean as written; a
// list joined with commas; "" for nothing. ok is false for a mapping.
func scalar(v any) (s string, ok bool) {
	switch v := v.(type) {
	case nil:
		return "", true
	case string:
		return v, true
	case int, int64, uint64, float64, bool:
		return fmt.Sprint(v), true
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			if parts[i], ok = scalar(e); !ok {
				return "", false
			}
		}
		return strings.Join(parts, ","), true
	}
	return "", false
}

// commandOf reads command: a list of arguments, or one string split at
// spaces.
func commandOf(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return strings.Fields(v), nil
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			s, ok := scalar(e)
			if !ok {
				return nil, fmt.Errorf("argument %d is not a value", i)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, errors.New("must be a list of arguments")
}

// envOf reads env: a mapping of names to values, or a list of one-entry
// mappings (older run files); sorted by name.
func envOf(v any) ([]string, error) {
	m := map[string]any{}
	switch v := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		m = v
	case []any:
		for _, e := range v {
			em, ok := e.(map[string]any)
			if !ok {
				return nil, errors.New("must be a mapping of names to values")
			}
			for k, ev := range em {
				m[k] = ev
			}
		}
	default:
		return nil, errors.New("must be a mapping of names to values")
	}
	out := make([]string, 0, len(m))
	for k, ev := range m {
		s, ok := scalar(ev)
		if !ok || k == "" || strings.Contains(k, "=") {
			return nil, fmt.Errorf("%s: not a variable and its value", k)
		}
		out = append(out, k+"="+s)
	}
	sort.Strings(out)
	return out, nil
}

// pathsOf reads resourcesPaths (comma-separated, or a list), else the
// deprecated resourcesPath, relative to base.
func pathsOf(fields map[string]field, base string) ([]string, error) {
	fl, ok := fields["resourcespaths"]
	if !ok {
		fl, ok = fields["resourcespath"]
	}
	if !ok {
		return nil, nil
	}
	s, ok := scalar(fl.value)
	if !ok {
		return nil, fmt.Errorf("%s must be a path or a list of paths", fl.name)
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, resolvePath(base, p))
		}
	}
	return out, nil
}

// resolvePath makes p absolute against base, expanding a leading ~/; ""
// stays "".
func resolvePath(base, p string) string {
	if p == "" {
		return ""
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, rest)
		}
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(base, p)
	}
	return filepath.Clean(p)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// logDestination is s as one of console, file and fileAndConsole, or "".
func logDestination(s string) string {
	for _, d := range []string{"console", "file", "fileAndConsole"} {
		if strings.EqualFold(s, d) {
			return d
		}
	}
	return ""
}

// runFilePath is the run file -f names: the file, or dapr.yaml in the
// folder, as the dapr CLI looks for it.
func runFilePath(p string) (string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		p = filepath.Join(p, "dapr.yaml")
		if !fileExists(p) {
			return "", fmt.Errorf("no dapr.yaml in %s", filepath.Dir(p))
		}
	}
	return p, nil
}

// runFileConfig returns the Configuration file the sidecar of app id reads:
// file itself when it names a name resolver; otherwise a copy of it (a new
// Configuration when file is "") in dir, whose spec.nameResolution is the
// static table of the run file's sidecars.
func runFileConfig(file, id string, table map[string]any, dir string) (string, error) {
	var doc map[string]any
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		spec, _ := doc["spec"].(map[string]any)
		nr, _ := spec["nameResolution"].(map[string]any)
		if c, _ := nr["component"].(string); c != "" {
			return file, nil
		}
	}
	if doc == nil {
		doc = map[string]any{"apiVersion": "dapr.io/v1alpha1", "kind": "Configuration",
			"metadata": map[string]any{"name": id}}
	}
	spec, _ := doc["spec"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
		doc["spec"] = spec
	}
	spec["nameResolution"] = map[string]any{"component": "static", "configuration": map[string]any{"apps": table}}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, id+".config.yaml")
	return path, os.WriteFile(path, out, 0o644)
}

// runFileCommonFlags are the flags of the command line that every app's
// `wapr run` gets, with paths made absolute: each runs in its app's
// folder. Flags that only one app can have are refused.
func runFileCommonFlags(f *runFlags) ([]string, error) {
	var out []string
	var err error
	resources := false
	f.flags.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "run-file", "f", "config":
			// -f is this command; --config is every app's default
			// Configuration (runRunFile).
		case "app-id", "app-port", "dapr-http-port", "dapr-grpc-port", "dapr-internal-grpc-port", "metrics-port", "profile-port":
			err = errors.Join(err, fmt.Errorf("--%s is each app's own: set it in the run file", fl.Name))
		case "resources-path", "components-path":
			if !resources {
				resources = true
				for _, p := range f.resourcesPaths {
					out = append(out, "--resources-path="+resolvePath(mustGetwd(), p))
				}
			}
		case "wasm-cache-dir":
			v := fl.Value.String()
			if v != "" && v != "-" {
				v = resolvePath(mustGetwd(), v)
			}
			out = append(out, "--wasm-cache-dir="+v)
		default:
			out = append(out, "--"+fl.Name+"="+fl.Value.String())
		}
	})
	return out, err
}

func mustGetwd() string {
	wd, _ := os.Getwd()
	return wd
}

// runFileArgs is the command line of app's `wapr run`: the command line's
// common flags, then the app's (a later flag wins), then its command.
func runFileArgs(exe string, common []string, app runFileApp, config string) []string {
	args := append([]string{exe, "run"}, common...)
	// Each app's sidecar gets free ports, as the dapr CLI gives each its
	// own: its run file entry may still name them (a later flag wins).
	args = append(args, "--app-id="+app.ID, "--dapr-http-port=0", "--dapr-grpc-port=0",
		"--dapr-internal-grpc-port="+strconv.Itoa(app.InternalPort), "--metrics-port=0", "--profile-port=0")
	if config != "" {
		args = append(args, "--config="+config)
	}
	for _, p := range app.ResourcesPaths {
		args = append(args, "--resources-path="+p)
	}
	args = append(args, app.Flags...)
	if len(app.Command) > 0 {
		args = append(append(args, "--"), app.Command...)
	}
	return args
}

// runRunFile is `wapr run -f FILE [flags]`.
func runRunFile(f *runFlags, stdout, stderr io.Writer) int {
	if len(f.appCommand) > 0 {
		fmt.Fprintln(stderr, "wapr: with -f the run file names the commands; give none after --")
		return 2
	}
	path, err := runFilePath(f.runFile)
	if err != nil {
		fmt.Fprintln(stderr, "wapr: -f:", err)
		return 2
	}
	probe, err := parseRunFlags(nil, io.Discard)
	if err != nil {
		fmt.Fprintln(stderr, "wapr:", err)
		return 2
	}
	rf, err := parseRunFile(path, probe.flags)
	if err != nil {
		fmt.Fprintln(stderr, "wapr:", err)
		return 2
	}
	common, err := runFileCommonFlags(f)
	if err != nil {
		fmt.Fprintln(stderr, "wapr:", err)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "wapr:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "wapr-run-file-")
	if err != nil {
		fmt.Fprintln(stderr, "wapr:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	table := map[string]any{}
	for i := range rf.Apps {
		a := &rf.Apps[i]
		if a.InternalPort == 0 {
			if a.InternalPort, err = freeTCPPort(); err != nil {
				fmt.Fprintln(stderr, "wapr:", err)
				return 1
			}
		}
		table[a.ID] = net.JoinHostPort("127.0.0.1", strconv.Itoa(a.InternalPort))
	}
	defaultConfig := ""
	if f.configFile != "" {
		defaultConfig = resolvePath(mustGetwd(), f.configFile)
	}
	children := make([]*runFileChild, len(rf.Apps))
	var errs []error
	for i, a := range rf.Apps {
		config := a.ConfigFile
		if config == "" {
			config = defaultConfig
		}
		config, err := runFileConfig(config, a.ID, table, tmp)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.ID, err))
			continue
		}
		args := runFileArgs(exe, common, a, config)
		if _, err := parseRunFlags(args[2:], io.Discard); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.ID, err))
		}
		children[i] = &runFileChild{app: a, args: args}
	}
	if len(errs) > 0 {
		fmt.Fprintf(stderr, "wapr: run file %s:\n  %v\n", rf.Path, joinIndented(errs))
		return 2
	}
	for _, s := range rf.Ignored {
		fmt.Fprintf(stderr, "wapr: run file: not used by wapr: %s\n", s)
	}
	for _, s := range rf.Notes {
		fmt.Fprintf(stderr, "wapr: run file: %s\n", s)
	}

	out, errOut := &syncWriter{w: stdout}, &syncWriter{w: stderr}
	stamp := time.Now().Format("20060102150405")
	for i, c := range children {
		if err := c.start(out, errOut, stamp); err != nil {
			fmt.Fprintf(stderr, "wapr: %s: %v\n", c.app.ID, err)
			for _, started := range children[:i] {
				started.proc.Signal(os.Interrupt)
			}
			for _, started := range children[:i] {
				started.wait()
			}
			return 1
		}
	}
	var wg sync.WaitGroup
	for _, c := range children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.wait()
		}()
	}
	wg.Wait()
	for _, c := range children {
		if c.code != 0 {
			return c.code
		}
	}
	return 0
}

// freeTCPPort returns a port that was free on every interface a moment ago.
func freeTCPPort() (int, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// runFileChild is the `wapr run` of one app of a run file.
type runFileChild struct {
	app  runFileApp
	args []string
	proc *process
	// appLog and waprLog are the log files, nil when the destination is
	// the console only.
	appLog, waprLog *os.File
	out             io.Writer // the console's stdout, for the child's lines
	code            int       // set by wait
}

// start opens the log files and starts the child, its output routed: the
// app's lines (appPrefix) to the console labelled with the app's id, and to
// its log file; the sidecar's to its log file or the console.
func (c *runFileChild) start(out, errOut io.Writer, stamp string) error {
	logs := filepath.Join(c.app.Dir, ".dapr", "logs")
	open := func(dest, kind string) (*os.File, error) {
		if dest == "console" {
			return nil, nil
		}
		if err := os.MkdirAll(logs, 0o755); err != nil {
			return nil, err
		}
		return os.OpenFile(filepath.Join(logs, c.app.ID+"_"+kind+"_"+stamp+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	}
	var err error
	if c.appLog, err = open(c.app.AppLog, "app"); err != nil {
		return err
	}
	if c.waprLog, err = open(c.app.WaprLog, "wapr"); err != nil {
		c.closeLogs()
		return err
	}
	what := "no app (no command)"
	if len(c.app.Command) > 0 {
		what = strings.Join(c.app.Command, " ")
	}
	fmt.Fprintf(out, "== WAPR - %s == starting %s in %s\n", c.app.ID, what, c.app.Dir)
	for _, f := range []*os.File{c.appLog, c.waprLog} {
		if f != nil {
			fmt.Fprintf(out, "== WAPR - %s == writing %s\n", c.app.ID, f.Name())
		}
	}
	c.out = out
	c.proc, err = startProcess(processSpec{
		argv:           c.args,
		dir:            c.app.Dir,
		env:            c.app.Env,
		stdout:         func(r io.Reader) { c.route(out, r) },
		stderr:         func(r io.Reader) { c.route(errOut, r) },
		forwardSignals: true,
	})
	if err != nil {
		c.closeLogs()
	}
	return err
}

// wait waits for the child to exit and its output to be written out.
func (c *runFileChild) wait() {
	<-c.proc.Exited()
	c.code = c.proc.Stop(nil, 5*time.Second)
	c.closeLogs()
	if c.code != 0 {
		fmt.Fprintf(c.out, "== WAPR - %s == exited with code %d\n", c.app.ID, c.code)
	}
}

func (c *runFileChild) closeLogs() {
	for _, f := range []*os.File{c.appLog, c.waprLog} {
		if f != nil {
			f.Close()
		}
	}
}

// route sends one output stream of the child where its lines belong.
func (c *runFileChild) route(console io.Writer, r io.Reader) {
	appLabel := []byte("== APP - " + c.app.ID + " == ")
	waprLabel := []byte("== WAPR - " + c.app.ID + " == ")
	appConsole := c.app.AppLog != "file"
	waprConsole := c.app.WaprLog != "file"
	var (
		app, echo bool
		buf       []byte
	)
	forEachLine(r, func(chunk []byte, continued bool) {
		if !continued {
			app = bytes.HasPrefix(chunk, []byte(appPrefix))
			if app {
				chunk = chunk[len(appPrefix):]
			} else {
				echo = waprConsole || echoed(chunk)
			}
		}
		label, toConsole, file := waprLabel, echo, c.waprLog
		if app {
			label, toConsole, file = appLabel, appConsole, c.appLog
		}
		if toConsole {
			buf = buf[:0]
			if !continued {
				buf = append(buf, label...)
			}
			console.Write(append(buf, chunk...))
		}
		if file != nil {
			file.Write(chunk)
		}
	})
}

// echoed reports whether a line of a sidecar's output reaches the console
// even when its log goes to a file: where its HTTP API listens, that it is
// ready or stopped, and errors.
func echoed(line []byte) bool {
	s := string(line)
	return strings.HasPrefix(s, "Dapr HTTP API listening on") || s == "ready\n" || s == "wapr stopped\n" ||
		strings.HasPrefix(s, "wapr:") || strings.Contains(s, "level=ERROR") || strings.Contains(s, `"level":"ERROR"`)
}

// syncWriter serialises writes, so lines from several children stay whole.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
