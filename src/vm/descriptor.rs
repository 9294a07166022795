//! The descriptor beside each frozen disk's flat image: a monolithicFlat descriptor
//! pointing at the sibling `disk<N>-flat.vmdk`, so the disks/ folder opens in qemu-img,
//! VMware and anything else that reads VMDK.

use crate::source::DiskImage;

pub fn synthesize(n: usize, image: &dyn DiskImage) -> Vec<u8> {
    let sectors = image.size().div_ceil(512);
    // Geometry as VMware computes it for SCSI disks (255 heads, 63 sectors/track).
    let cylinders = (sectors / (255 * 63)).clamp(1, 65535);
    // Copied into a quoted value: anything but a plain name would change the file.
    let adapter = image
        .adapter_type()
        .filter(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "lsilogic".into());
    format!(
        "# Disk DescriptorFile\n\
         version=1\n\
         encoding=\"UTF-8\"\n\
         CID=fffffffe\n\
         parentCID=ffffffff\n\
         createType=\"monolithicFlat\"\n\
         \n\
         # Extent description\n\
         RW {sectors} FLAT \"disk{n}-flat.vmdk\" 0\n\
         \n\
         # The Disk Data Base\n\
         #DDB\n\
         \n\
         ddb.virtualHWVersion = \"4\"\n\
         ddb.geometry.cylinders = \"{cylinders}\"\n\
         ddb.geometry.heads = \"255\"\n\
         ddb.geometry.sectors = \"63\"\n\
         ddb.adapterType = \"{adapter}\"\n"
    )
    .into_bytes()
}
