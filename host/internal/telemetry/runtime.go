package telemetry

// ComponentInit records one component's start, as daprd's runtime
// metrics do: dapr_runtime_component_loaded and
// dapr_runtime_component_init_total{component=<type>} when it started,
// dapr_runtime_component_init_fail_total{component=<type>, reason,
// componentName} when it did not (reason "creation" when nothing provides
// its type, else "init"). Components start rarely: the series are looked
// up by name.
func (m *Metrics) ComponentInit(typ, name string, err error, creation bool) {
	if m == nil {
		return
	}
	if err == nil {
		m.set.GetOrCreateCounter("dapr_runtime_component_loaded{" + m.base + "}").Inc()
		m.set.GetOrCreateCounter("dapr_runtime_component_init_total{" + m.base + "," + label("component", typ) + "}").Inc()
		return
	}
	reason := "init"
	if creation {
		reason = "creation"
	}
	m.set.GetOrCreateCounter("dapr_runtime_component_init_fail_total{" + m.base + "," + label("component", typ) + "," +
		label("reason", reason) + "," + label("componentName", name) + "}").Inc()
}
