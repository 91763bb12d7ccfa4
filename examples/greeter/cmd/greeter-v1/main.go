// Command greeter-v1 is release v1 of the example service of
// docs/releases.md: it greets user 1 by users.name.
package main

import "github.com/ferrydb/ferry/examples/greeter/internal/greeter"

func main() {
	greeter.Main("v1", "SELECT name FROM users WHERE id = 1")
}
