//! `.dockerignore`: reading the file and matching context paths exactly as docker/BuildKit do.
