// Package resources loads Dapr resource files — Component, Subscription,
// Resiliency and Configuration documents — from resources folders, so that a
// folder that works with Dapr works with wapr unchanged.
//
// Loading is forgiving by design: one broken document must not keep the
// sidecar from serving the components that are fine, so every problem is
// returned as its own *Error naming the file, line, resource and field, and
// everything else still loads. Documents of other kinds (HTTPEndpoint, …)
// and unknown apiVersions may share the folder: they are listed in
// Set.Unacted, for the host to log, never dropped silently.
//
// Field names are matched case-insensitively (an exact match wins), because
// Dapr decodes these files through encoding/json, which does the same:
// `pubsubName` and `pubsubname` both work there and must both work here.
package resources

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Component is one Dapr Component resource (apiVersion dapr.io/v1alpha1, kind
// Component) that applies to the app being loaded for.
type Component struct {
	// Name is metadata.name: the {store}/{pubsub}/{name} apps use in API paths.
	Name string
	// Namespace is metadata.namespace; self-hosted mode loads the component
	// whatever it says, as Dapr does.
	Namespace string
	// Type is spec.type, e.g. "state.redis".
	Type string
	// Version is spec.version, "v1" when the file leaves it out.
	Version string
	// Metadata holds spec.metadata by item name. Scalars keep the text written
	// in the file ("true", "6379"); a map or list value is rendered as compact
	// JSON with sorted keys; envRef items hold the environment variable's
	// value. When a name repeats, the last item wins, as in Dapr. Never nil.
	Metadata map[string]string
	// SecretRefs maps the name of each spec.metadata item written with
	// secretKeyRef to the secret it names; Metadata holds no entry for it
	// until the host resolves it through SecretStore before Init. Never nil.
	SecretRefs map[string]SecretRef
	// SecretStore is auth.secretStore: the secret store SecretRefs are read
	// from. It is set whenever SecretRefs is not empty.
	SecretStore string
	// Annotations is metadata.annotations, where wapr-only settings
	// (wapr.dev/...) live so that Dapr ignores them. Never nil.
	Annotations map[string]string
	// Scopes lists the app IDs allowed to load the component; empty means all.
	Scopes []string
	// IgnoreErrors is spec.ignoreErrors: the sidecar keeps running when the
	// component fails to initialise.
	IgnoreErrors bool
	// InitTimeout is spec.initTimeout, DefaultInitTimeout when unset.
	InitTimeout time.Duration
	// File is the file the component was read from, for messages.
	File string
}

// SecretRef is a metadata item's secretKeyRef: the key Key of the secret
// Name. Key is never empty (it defaults to Name).
type SecretRef struct {
	Name string
	Key  string
}

// DefaultInitTimeout is the init timeout of a component that sets none; it is
// Dapr's default.
const DefaultInitTimeout = 5 * time.Second

// Rule is one content-based routing rule of a v2alpha1 subscription: events
// for which the CEL expression Match is true go to Path. An empty Match
// always matches.
type Rule struct {
	Match string
	Path  string
}

// BulkSubscribe is a subscription's spec.bulkSubscribe. Zero counts mean
// "use the runtime default": the right default depends on the broker, which
// this package does not know.
type BulkSubscribe struct {
	Enabled            bool
	MaxMessagesCount   int
	MaxAwaitDurationMs int
}

// Subscription is one declarative Dapr Subscription resource (apiVersion
// dapr.io/v1alpha1 or dapr.io/v2alpha1) that applies to the app being loaded
// for.
type Subscription struct {
	// Name is metadata.name; optional, used in messages and the metadata API.
	Name string
	// PubsubName and Topic say what to subscribe to; both are required.
	PubsubName string
	Topic      string
	// Rules are v2alpha1 spec.routes.rules, in file order: the first match
	// wins.
	Rules []Rule
	// DefaultPath is v2alpha1 spec.routes.default or v1alpha1 spec.route:
	// where events go that match no rule.
	DefaultPath string
	// DeadLetterTopic is where undeliverable events are republished, if set.
	DeadLetterTopic string
	// Metadata is spec.metadata (e.g. rawPayload). Never nil.
	Metadata map[string]string
	// BulkSubscribe is spec.bulkSubscribe.
	BulkSubscribe BulkSubscribe
	// Scopes lists the app IDs the subscription applies to; empty means all.
	Scopes []string
	// File is the file the subscription was read from, for messages.
	File string
}

// Set is what loaded: resources in the order they appear, files sorted by
// name, folders in the order given.
type Set struct {
	Components    []Component
	Subscriptions []Subscription
	// Resiliencies are the Resiliency resources that apply to the app.
	Resiliencies []Resiliency
	// Configurations are Configuration resources found in the folders;
	// daprd reads its Configuration from --config only, and so does wapr.
	Configurations []Configuration
	// Unacted lists the documents of kinds wapr does not act on.
	Unacted []Unacted
}

// Error names exactly where a problem is, so an operator can go straight to
// the line. Kind, Name and Field are empty when they do not apply (a folder
// that cannot be read, malformed YAML).
type Error struct {
	File  string
	Line  int    // 1-based; 0 when unknown
	Kind  string // "Component", "Subscription", "Resiliency" or "Configuration"
	Name  string // metadata.name of the resource
	Field string // dotted path of the offending field, e.g. "spec.metadata[2].secretKeyRef"
	Err   error
}

// Error formats the problem as `file:line: kind "name": field: problem`, e.g.
// `components/redis.yaml:12: component "statestore": spec.type: is required`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Kind != "" {
		b.WriteString(strings.ToLower(e.Kind))
		if e.Name != "" {
			b.WriteByte(' ')
			b.WriteString(strconv.Quote(e.Name))
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying problem, so errors.Is sees through Error.
func (e *Error) Unwrap() error { return e.Err }

// Load reads every *.yaml and *.yml file directly inside each of dirs (not
// recursively; files sorted by name; multi-document files included) and
// returns the resources that apply to appID, plus one error per problem.
//
// A resource applies to appID when its scopes are empty or list appID; with
// an empty appID only unscoped resources apply. Scoping is decided before a
// resource is checked, so a broken resource meant for another app is no
// concern of this one. Component names, and subscriptions' pubsub+topic pairs,
// must be unique across all dirs: the first declaration wins and each later
// one is reported naming both files. A resource with an error is not loaded
// and does not claim its name.
//
// A folder that does not exist or cannot be read is an error naming it; the
// other folders still load. A folder listed twice is read once.
func Load(dirs []string, appID string) (Set, []error) {
	l := newLoader(appID)
	seen := make(map[string]bool, len(dirs))
	for _, dir := range dirs {
		if seen[filepath.Clean(dir)] {
			continue
		}
		seen[filepath.Clean(dir)] = true
		l.dir(dir)
	}
	return l.set, l.errs
}

// Parse loads the resources in one file's contents, named file in messages.
// It applies the same rules as Load (which calls it through the same code),
// for one file; see Load.
func Parse(file string, data []byte, appID string) (Set, []error) {
	l := newLoader(appID)
	l.file(file, data)
	return l.set, l.errs
}

// loader accumulates one Load: what loaded, the errors, and who claimed which
// name first.
type loader struct {
	appID string
	set   Set
	errs  []error
	// components maps a component name to where it was first declared.
	components map[string]string
	// subscriptions maps pubsub name + topic to where the first subscription
	// for it was declared and its name.
	subscriptions map[[2]string]firstSubscription
}

type firstSubscription struct {
	name  string
	where string
}

func newLoader(appID string) *loader {
	return &loader{
		appID:         appID,
		components:    map[string]string{},
		subscriptions: map[[2]string]firstSubscription{},
	}
}

func (l *loader) dir(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		// os.ReadDir's *PathError repeats the folder name; keep only the cause
		// (still matching fs.ErrNotExist and friends).
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		l.errs = append(l.errs, &Error{File: dir, Err: fmt.Errorf("cannot read resources folder: %w", err)})
		return
	}
	// os.ReadDir sorts by name already; the sort makes the order a contract
	// rather than an accident.
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); ext != ".yaml" && ext != ".yml" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if e.IsDir() {
			continue
		}
		if e.Type()&fs.ModeSymlink != 0 {
			// A symlinked file is fine (Kubernetes mounts ConfigMaps that
			// way); a symlinked folder is not a resource file.
			if fi, err := os.Stat(path); err == nil && fi.IsDir() {
				continue
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			l.errs = append(l.errs, &Error{File: path, Err: fmt.Errorf("cannot read file: %w", err)})
			continue
		}
		l.file(path, data)
	}
}

func (l *loader) file(file string, data []byte) {
	for _, c := range splitDocuments(data) {
		l.document(file, c)
	}
}

// inScope reports whether a resource with these scopes applies to appID.
func inScope(scopes []string, appID string) bool {
	return len(scopes) == 0 || (appID != "" && slices.Contains(scopes, appID))
}

// addComponent keeps c unless an earlier component claimed its name.
func (l *loader) addComponent(c Component, line int) {
	where := c.File + ":" + strconv.Itoa(line)
	if first, ok := l.components[c.Name]; ok {
		l.errs = append(l.errs, &Error{
			File: c.File, Line: line, Kind: kindComponent, Name: c.Name, Field: "metadata.name",
			Err: fmt.Errorf("duplicate component name: first declared at %s, which wins", first),
		})
		return
	}
	l.components[c.Name] = where
	l.set.Components = append(l.set.Components, c)
}

// addSubscription keeps s unless an earlier subscription claimed its pubsub
// and topic: Dapr delivers a topic to one set of routes only.
func (l *loader) addSubscription(s Subscription, line int) {
	key := [2]string{s.PubsubName, s.Topic}
	if first, ok := l.subscriptions[key]; ok {
		by := ""
		if first.name != "" {
			by = fmt.Sprintf(" by subscription %q", first.name)
		}
		l.errs = append(l.errs, &Error{
			File: s.File, Line: line, Kind: kindSubscription, Name: s.Name, Field: "spec.topic",
			Err: fmt.Errorf("duplicate subscription to topic %q of pubsub %q: first declared%s at %s, which wins",
				s.Topic, s.PubsubName, by, first.where),
		})
		return
	}
	l.subscriptions[key] = firstSubscription{name: s.Name, where: s.File + ":" + strconv.Itoa(line)}
	l.set.Subscriptions = append(l.set.Subscriptions, s)
}
