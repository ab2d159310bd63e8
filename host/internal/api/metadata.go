package api

import (
	"sort"
	"strings"

	"github.com/wapr-dev/wapr/host/component"
)

// FailedComponent is a component that did not load, and why.
type FailedComponent struct {
	Name  string `json:"name"`
	Type  string `json:"type,omitempty"`
	File  string `json:"file,omitempty"`
	Error string `json:"error"`
}

// SubscriptionInfo describes one active subscription (Dapr's metadata shape).
type SubscriptionInfo struct {
	PubSubName      string            `json:"pubsubname"`
	Topic           string            `json:"topic"`
	Metadata        map[string]string `json:"metadata,omitempty"`
	Rules           []RuleInfo        `json:"rules,omitempty"`
	DeadLetterTopic string            `json:"deadLetterTopic,omitempty"`
	Type            string            `json:"type"` // DECLARATIVE or PROGRAMMATIC
}

// RuleInfo is one routing rule of a subscription.
type RuleInfo struct {
	Match string `json:"match"`
	Path  string `json:"path"`
}

// ComponentInfo is one component in the metadata response. The first four
// fields are Dapr's; Runtime (and the Wasm details) are wapr's additions,
// which SDKs ignore.
type ComponentInfo struct {
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	Version      string   `json:"version"`
	Capabilities []string `json:"capabilities,omitempty"`
	Runtime      string   `json:"runtime"`
	Engine       string   `json:"engine,omitempty"`
	ModuleDigest string   `json:"moduleDigest,omitempty"`
	ABIVersion   string   `json:"abiVersion,omitempty"`
	Note         string   `json:"note,omitempty"`
}

// AppConnection describes how the sidecar reaches the app.
type AppConnection struct {
	Port           int    `json:"port,omitempty"`
	Protocol       string `json:"protocol,omitempty"`
	ChannelAddress string `json:"channelAddress,omitempty"`
}

// MetadataResponse is the body of GET /v1.0/metadata.
type MetadataResponse struct {
	ID                      string             `json:"id"`
	RuntimeVersion          string             `json:"runtimeVersion"`
	Extended                map[string]string  `json:"extended,omitempty"`
	Components              []ComponentInfo    `json:"components,omitempty"`
	Subscriptions           []SubscriptionInfo `json:"subscriptions,omitempty"`
	AppConnectionProperties *AppConnection     `json:"appConnectionProperties,omitempty"`
	// Actors (daprd's deprecated "actors") and ActorRuntime describe the
	// actor runtime; both are left out while actors are off.
	Actors       []ActiveActors    `json:"actors,omitempty"`
	ActorRuntime *ActorRuntimeInfo `json:"actorRuntime,omitempty"`
	// Scheduler is daprd's: the scheduler members connected to (while
	// reminders are on).
	Scheduler *MetadataScheduler `json:"scheduler,omitempty"`
	// Wapr holds what only wapr reports, under one key SDKs ignore.
	Wapr *WaprMetadata `json:"wapr,omitempty"`
}

// MetadataScheduler is daprd's scheduler section of the metadata response.
type MetadataScheduler struct {
	ConnectedAddresses []string `json:"connected_addresses,omitempty"`
}

// WaprMetadata is wapr's own part of the metadata response.
type WaprMetadata struct {
	FailedComponents []FailedComponent `json:"failedComponents,omitempty"`
}

// Metadata returns the sidecar's self-description.
func (a *API) Metadata() *MetadataResponse {
	snap := a.snapshot.Load()
	out := &MetadataResponse{ID: a.appID, RuntimeVersion: a.runtime.Version}
	for _, s := range snap.States {
		caps := featureStrings(s.Features)
		if component.HasFeature(s.Features, "ETAG") && component.HasFeature(s.Features, "TRANSACTIONAL") {
			caps = append(caps, "ACTOR")
		}
		out.Components = append(out.Components, componentInfo(s.Info, caps))
	}
	for _, p := range snap.PubSubs {
		out.Components = append(out.Components, componentInfo(p.Info, featureStrings(p.Features)))
	}
	for _, s := range snap.Secrets {
		out.Components = append(out.Components, componentInfo(s.Info, featureStrings(s.Features)))
	}
	for _, c := range snap.Configurations {
		out.Components = append(out.Components, componentInfo(c.Info, nil))
	}
	for _, l := range snap.Locks {
		out.Components = append(out.Components, componentInfo(l.Info, nil))
	}
	bindingCaps := map[string][]string{}
	infos := map[string]Info{}
	for n, b := range snap.Outputs {
		bindingCaps[n] = append(bindingCaps[n], "OUTPUT_BINDING")
		infos[n] = b.Info
	}
	for n, b := range snap.Inputs {
		bindingCaps[n] = append([]string{"INPUT_BINDING"}, bindingCaps[n]...)
		infos[n] = b.Info
	}
	for n, info := range infos {
		out.Components = append(out.Components, componentInfo(info, bindingCaps[n]))
	}
	sort.Slice(out.Components, func(i, j int) bool { return out.Components[i].Name < out.Components[j].Name })

	a.mu.Lock()
	if len(a.extended) > 0 {
		out.Extended = make(map[string]string, len(a.extended))
		for k, v := range a.extended {
			out.Extended[k] = v
		}
	}
	out.Subscriptions = append(out.Subscriptions, a.subs...)
	if len(a.failed) > 0 {
		out.Wapr = &WaprMetadata{FailedComponents: append([]FailedComponent(nil), a.failed...)}
	}
	a.mu.Unlock()

	if rt := a.actorRuntime(); rt != nil {
		st := rt.Status()
		out.ActorRuntime = &st
		out.Actors = st.ActiveActors
		if len(st.SchedulerAddresses) > 0 {
			out.Scheduler = &MetadataScheduler{ConnectedAddresses: st.SchedulerAddresses}
		}
	}
	if a.runtime.AppPort > 0 {
		out.AppConnectionProperties = &AppConnection{Port: a.runtime.AppPort, Protocol: a.runtime.Protocol, ChannelAddress: a.runtime.Address}
	}
	return out
}

func componentInfo(in Info, caps []string) ComponentInfo {
	return ComponentInfo{
		Name: in.Name, Type: in.Type, Version: in.Version, Capabilities: caps,
		Runtime: in.Served.Runtime, Engine: in.Served.Engine, ModuleDigest: in.Served.Digest,
		ABIVersion: in.Served.ABI, Note: in.Served.Note,
	}
}

func featureStrings(fs []component.Feature) []string {
	out := make([]string, 0, len(fs)+1)
	for _, f := range fs {
		out = append(out, string(f))
	}
	return out
}

// SetMetadata stores an attribute shown under "extended"; it lives in memory
// only, as in Dapr.
func (a *API) SetMetadata(key, value string) {
	a.mu.Lock()
	a.extended[key] = value
	a.mu.Unlock()
}

// Healthz reports readiness: components loaded, the API serving and the app
// channel ready. appID, when not empty, must be this sidecar's.
func (a *API) Healthz(appID string) error {
	if appID != "" && !strings.EqualFold(appID, a.appID) {
		return errorf(CodeHealthAppIDMismatch, nil, "dapr app-id does not match")
	}
	if !a.outboundReady.Load() || !a.appReady.Load() {
		return errorf(CodeHealthNotReady, nil, "dapr is not ready")
	}
	return nil
}

// OutboundHealthz reports readiness regardless of the app.
func (a *API) OutboundHealthz() error {
	if !a.outboundReady.Load() {
		return errorf(CodeOutboundHealthNotReady, nil, "dapr outbound is not ready")
	}
	return nil
}
