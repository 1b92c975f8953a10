// Release builds embed ui/; make adding or changing a file there trigger a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=ui");
}
