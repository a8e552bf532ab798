// The store's migrations are embedded at build time: rebuild when one is
// added or changed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
