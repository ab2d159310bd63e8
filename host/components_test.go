package host_test

import "fmt"

// redisComponentYAML declares a component of typ on the Redis at addr, as
// the Dapr docs write it.
func redisComponentYAML(name, typ, addr string) string {
	return fmt.Sprintf(`apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: %s
spec:
  type: %s
  version: v1
  metadata:
  - name: redisHost
    value: %s
  - name: redisPassword
    value: ""
`, name, typ, addr)
}
