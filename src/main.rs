fn main() {
    println!("vmsnapfs");
}
