// Release builds embed ui/ and the starter runbooks; make adding or changing a file there
// trigger a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=ui");
    println!("cargo:rerun-if-changed=data/runbooks");
}
