//! The viewer layout sent with every recording: the robot in 3D next to the
//! camera image, the instruction, the action and joint plots and the
//! controller status, instead of the viewer's automatic grid (which draws
//! the depth image into the 3D scene as a point cloud and gives every
//! series the same small tile).

use rerun::blueprint::components::{PanelState, PlayState};
use rerun::blueprint::{
    Blueprint, BlueprintActivation, BlueprintPanel, ContainerLike, Horizontal, SelectionPanel,
    Spatial2DView, Spatial3DView, TextDocumentView, TextLogView, TimePanel, TimeSeriesView,
    Vertical,
};
use rerun::RecordingStream;

use crate::VizError;

/// The project's layout.
pub(crate) fn layout() -> Blueprint {
    let robot: ContainerLike = Spatial3DView::new("robot")
        .with_origin("/world")
        .with_contents(["+ /world/**", "- /world/camera/depth"])
        .into();
    let camera: ContainerLike = Spatial2DView::new("camera (what the policy sees)")
        .with_origin("/world/camera")
        .with_contents(["+ /world/camera/image"])
        .into();
    let depth: ContainerLike = Spatial2DView::new("depth")
        .with_origin("/world/camera")
        .with_contents(["+ /world/camera/depth"])
        .into();
    let instruction: ContainerLike = TextDocumentView::new("instruction")
        .with_origin("/instruction")
        .into();
    let tokens: ContainerLike = TimeSeriesView::new("action tokens")
        .with_origin("/action/tokens")
        .into();
    let decoded: ContainerLike = TimeSeriesView::new("decoded action")
        .with_origin("/action/decoded")
        .into();
    let joints: ContainerLike = TimeSeriesView::new("joints (rad): measured, commanded, limits")
        .with_origin("/joints")
        .into();
    let status: ContainerLike = TextLogView::new("controller status")
        .with_origin("/")
        .with_contents(["+ /status", "+ /episode"])
        .into();
    let left: ContainerLike = Vertical::new([robot, Horizontal::new([tokens, decoded]).into()])
        .with_row_shares([3.0, 1.2])
        .into();
    let wrist: ContainerLike = Spatial2DView::new("wrist camera")
        .with_origin("/wrist")
        .with_contents(["+ /wrist/image"])
        .into();
    let images: ContainerLike = Horizontal::new([camera, wrist, depth]).into();
    let right: ContainerLike = Vertical::new([images, instruction, joints, status])
        .with_row_shares([2.0, 0.4, 1.6, 1.2])
        .into();
    Blueprint::new(Horizontal::new([left, right]).with_column_shares([1.3, 1.0]))
        .with_blueprint_panel(BlueprintPanel::new().with_state(PanelState::Collapsed))
        .with_selection_panel(SelectionPanel::new().with_state(PanelState::Collapsed))
        .with_time_panel(
            TimePanel::new()
                .with_state(PanelState::Collapsed)
                .with_timeline("step")
                .with_play_state(PlayState::Following),
        )
}

/// Sends the layout, active at once and the default for the `vla` application.
pub(crate) fn send(rec: &RecordingStream) -> Result<(), VizError> {
    layout().send(rec, BlueprintActivation::default())?;
    Ok(())
}
