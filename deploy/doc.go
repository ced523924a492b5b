// Package deploy holds the deployment files of cordstream
// (docker-compose.yml, env.example; the Dockerfile and .dockerignore are at
// the repository root) and the tests that check them without a Docker
// engine: the compose file parses, its broker matches the broker the tests
// run against (scripts/kafka), its command lines are accepted by the real
// CLI and run against a real broker, and the Dockerfile's build command
// builds a static binary from the build context .dockerignore leaves.
package deploy
