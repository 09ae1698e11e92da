//! COPY and ADD as BuildKit performs them on real filesystems.
