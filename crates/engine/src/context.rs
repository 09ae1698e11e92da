//! The build context, read in place: `.dockerignore` filtering, walking, and hashing only what COPY/ADD select.
